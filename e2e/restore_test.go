package e2e

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/nftbridge/nftbridge/bridge/store"
	"github.com/nftbridge/nftbridge/e2e/echo"
)

// endpointInfo is the part of `endpoint ls --format json` the tests read.
type endpointInfo struct {
	Name     string
	Network  string
	Addr     string
	HostVeth string
}

func (w *world) endpoints() map[string]endpointInfo {
	w.t.Helper()
	var list []endpointInfo
	if err := json.Unmarshal([]byte(w.mustNB("endpoint", "ls", "--format", "json")), &list); err != nil {
		w.t.Fatalf("endpoint ls --format json: %v", err)
	}
	out := map[string]endpointInfo{}
	for _, ep := range list {
		out[ep.Name] = ep
	}
	return out
}

// checkPairFlows is what must hold in a pairWorld whenever nftbridge is in
// charge: the published port, outbound masquerade, isolation, no direct
// access.
func (w *pairWorld) checkPairFlows(t *testing.T) {
	t.Helper()
	w.expectPeer(t, w.outside, "tcp", hostPort(hostAddr, 8080), outsideAddr)
	w.expectPeer(t, w.outside, "udp", hostPort(hostAddr, 5353), outsideAddr)
	w.expectPeer(t, w.a, "tcp", hostPort(outsideAddr, outsideTCP), hostAddr)
	w.expectPeer(t, w.b, "tcp", hostPort(outsideAddr, outsideTCP), hostAddr)
	w.expectAllBlocked(t,
		blocked(w.a, "tcp", hostPort(w.bAddr, 80), echo.Timeout),
		blocked(w.b, "tcp", hostPort(w.aAddr, 80), echo.Timeout),
		blocked(w.outside, "tcp", hostPort(w.aAddr, 80), echo.Timeout))
}

// TestRestoreAfterFlush: `nft flush ruleset`, deleted bridges and a deleted
// veth (a reboot, or an admin's accident) are repaired by `nftbridge
// restore` from the store alone, down to the same table.
func TestRestoreAfterFlush(t *testing.T) {
	t.Parallel()
	w := newPairWorld(t)
	w.checkPairFlows(t)
	before := w.nft("list", "table", "ip", "nftbridge")
	vethB := w.endpoints()["b"].HostVeth

	w.nft("flush", "ruleset")
	w.must(ipIn(w.host, "link", "del", w.bridgeA))
	w.must(ipIn(w.host, "link", "del", w.bridgeB))
	w.must(ipIn(w.host, "link", "del", vethB)) // takes b's eth0 with it
	// Without the table nothing is translated: the host's stack refuses.
	w.expectBlocked(t, w.outside, "tcp", hostPort(hostAddr, 8080), echo.Refused)

	w.mustNB("restore")
	if after := w.nft("list", "table", "ip", "nftbridge"); after != before {
		t.Errorf("table after restore differs from before the flush:\n%s", lineDiff(before, after))
	}
	for _, link := range []string{w.bridgeA, w.bridgeB, vethB} {
		w.must(ipIn(w.host, "link", "show", link))
	}
	w.checkPairFlows(t)

	// A second restore changes nothing.
	w.mustNB("restore")
	if again := w.nft("list", "table", "ip", "nftbridge"); again != before {
		t.Errorf("second restore changed the table:\n%s", lineDiff(before, again))
	}
}

// TestUnpublish: a port stops working the moment it is unpublished and works
// again once published anew; the other ports never notice.
func TestUnpublish(t *testing.T) {
	t.Parallel()
	w := newPairWorld(t)
	w.expectPeer(t, w.outside, "tcp", hostPort(hostAddr, 8080), outsideAddr)
	w.mustNB("port", "unpublish", "a", "-p", "8080:80")
	w.expectAllBlocked(t,
		blocked(w.outside, "tcp", hostPort(hostAddr, 8080), echo.Refused),
		blocked(w.outside, "tcp", hostPort(w.aAddr, 80), echo.Timeout))
	w.expectPeer(t, w.outside, "udp", hostPort(hostAddr, 5353), outsideAddr)
	w.mustNB("port", "publish", "a", "-p", "8090:80")
	w.expectPeer(t, w.outside, "tcp", hostPort(hostAddr, 8090), outsideAddr)
	w.expectBlocked(t, w.outside, "tcp", hostPort(hostAddr, 8080), echo.Refused)
}

// TestUnpublishUDPFlow: a UDP client that keeps its socket (one conntrack
// entry) must lose the port when it is unpublished, as with Docker, which
// deletes the conntrack entries of a UDP mapping it removes. Otherwise the
// old DNAT lives on for as long as the client keeps sending.
func TestUnpublishUDPFlow(t *testing.T) {
	t.Parallel()
	w := newPairWorld(t)
	var flow *echo.UDPFlow
	err := inNS(w.outside, func() (err error) {
		flow, err = echo.DialUDP(hostPort(hostAddr, 5353))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	defer flow.Close()
	if res := flow.Exchange(attemptTimeout); res.Outcome != echo.Connected {
		t.Fatalf("UDP flow to the published port: %v; want connected", res)
	}
	w.mustNB("port", "unpublish", "a", "-p", "5353:53/udp")
	if res := flow.Exchange(blockedTimeout); res.Outcome == echo.Connected {
		t.Errorf("the same UDP flow after unpublish: %v; want it cut off (timeout or refused)", res)
	}
}

// TestRestoreInStages: a restore of a table of 8,192 elements or more
// installs it in stages (the base chains' rules last, onto complete sets).
// The table it leaves is the one a second restore, in a single batch onto
// it, does not change, and it carries traffic like any other: published
// ports, masquerade, isolation, no direct access.
func TestRestoreInStages(t *testing.T) {
	t.Parallel()
	w := newPairWorld(t)
	// 250 more containers on network na, 20 ports each, whose namespaces
	// are gone (as after a reboot): 10,250 more elements.
	s, err := store.Open(w.statePath(), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	err = s.Update(func(st *store.State) error {
		for i := range 250 {
			name := fmt.Sprintf("bulk%03d", i)
			id := fmt.Sprintf("%064x", 0xb000+i)
			ep := &store.Endpoint{Name: name, ID: id, Network: "na",
				Addr:     netip.AddrFrom4([4]byte{172, 31, 0, byte(3 + i)}),
				HostVeth: "nbv" + id[54:], PeerName: "nbp" + id[54:], Created: time.Now().UTC()}
			for j := range 20 {
				ep.Ports = append(ep.Ports, store.Port{Proto: "tcp", HostIP: netip.IPv4Unspecified(),
					HostPort: uint16(20000 + 20*i + j), ContainerPort: uint16(1000 + j)})
			}
			st.Endpoints[name] = ep
		}
		return nil
	})
	s.Close()
	if err != nil {
		t.Fatal(err)
	}

	w.nft("flush", "ruleset")
	w.mustNB("restore")
	staged := w.nft("list", "table", "ip", "nftbridge")
	if n := strings.Count(staged, "tcp . 2"); n != 5000 {
		t.Fatalf("after the restore the table holds %d bulk ports, want 5000:\n%.2000s", n, staged)
	}
	w.checkPairFlows(t)
	w.mustNB("restore")
	if again := w.nft("list", "table", "ip", "nftbridge"); again != staged {
		t.Errorf("a restore onto the staged table changed it:\n%s", lineDiff(staged, again))
	}
}
