package e2e

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nftbridge/nftbridge/e2e/echo"
	"github.com/nftbridge/nftbridge/ports"
)

// TestLifecycle walks one endpoint through what happens to real ones: port
// ranges and ephemeral ports on a network with a default host address, its
// table deleted behind nftbridge's back, its namespace vanishing, removal.
func TestLifecycle(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.network("nl", "172.27.0.0/24", "--host-ip", hostAddr)
	ns, _ := w.endpoint("nl", "c1")
	w.serve(ns, []uint16{80, 81, 82, 83}, nil)

	// A range, and an ephemeral port printed by the CLI; both take the
	// network's host address, so loopback does not reach them.
	w.mustNB("port", "publish", "c1", "-p", "8000-8002:80-82")
	printed := w.mustNB("port", "publish", "c1", "-p", "83")
	ephemeral, err := ports.ParseBinding(printed)
	if err != nil || ephemeral.HostIP.String() != hostAddr || ephemeral.ContainerPort != 83 {
		t.Fatalf("port publish -p 83 printed %q (%v); want %s:<port>->83/tcp", printed, err, hostAddr)
	}
	for _, port := range []int{8000, 8001, 8002, int(ephemeral.HostPort)} {
		w.expectPeer(t, w.outside, "tcp", hostPort(hostAddr, port), outsideAddr)
	}
	w.expectBlocked(t, w.host, "tcp", hostPort("127.0.0.1", 8000), echo.Refused)

	// The table deleted under us: the next change rebuilds all of it.
	w.nft("delete", "table", "ip", "nftbridge")
	w.expectBlocked(t, w.outside, "tcp", hostPort(hostAddr, 8000), echo.Refused)
	w.mustNB("port", "publish", "c1", "-p", "8010:80")
	if table, want := strings.TrimSpace(w.nft("list", "table", "ip", "nftbridge")), w.mustNB("ruleset"); table != want {
		t.Errorf("table after the next change differs from `nftbridge ruleset`:\n%s", lineDiff(want, table))
	}
	w.expectPeer(t, w.outside, "tcp", hostPort(hostAddr, 8000), outsideAddr)
	w.expectPeer(t, w.outside, "tcp", hostPort(hostAddr, 8010), outsideAddr)

	// The container goes away without telling nftbridge (its veth dies with
	// it): restore keeps its record and says so; endpoint rm then works.
	w.removeNS(ns)
	w.waitLinkGone(w.endpoints()["c1"].HostVeth)
	if res := w.must(w.nb("restore")); !strings.Contains(res.stderr, "c1") {
		t.Errorf("restore with c1's namespace gone does not mention c1: %v", res)
	}
	w.mustNB("endpoint", "rm", "c1")
	w.mustNB("network", "rm", "nl")
	if links := linkNames(t, w.host); !slices.Equal(links, []string{"lo", "uplink"}) {
		t.Errorf("host links after removal: %v, want only lo and uplink", links)
	}
	if n := w.dnatElements(); n != 0 {
		t.Errorf("DNAT maps have %d elements after removal", n)
	}
}

// removeNS deletes one of the world's namespaces before the end of the
// test, closing its echo servers first: their sockets would keep it alive.
func (w *world) removeNS(ns string) {
	w.t.Helper()
	w.mu.Lock()
	w.namespaces = slices.DeleteFunc(w.namespaces, func(n string) bool { return n == ns })
	servers := w.servers[ns]
	delete(w.servers, ns)
	w.mu.Unlock()
	for _, s := range servers {
		s.Close()
	}
	w.must(run("ip", "netns", "del", ns))
}

// waitLinkGone waits for the kernel to finish destroying a host interface
// (a namespace's teardown runs asynchronously).
func (w *world) waitLinkGone(name string) {
	w.t.Helper()
	deadline := time.Now().Add(reachDeadline)
	for ipIn(w.host, "link", "show", name).code == 0 {
		if time.Now().After(deadline) {
			w.t.Fatalf("interface %s still exists %v after its namespace was deleted", name, reachDeadline)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
