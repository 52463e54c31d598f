package e2e

import (
	"regexp"
	"strconv"
	"testing"

	"github.com/nftbridge/nftbridge/e2e/echo"
)

// TestLoopbackSpoof: 127.0.0.0/8 is the host's alone. A neighbour on the
// uplink that sends packets for 127.0.0.1 to the host's MAC must not reach a
// port published on 127.0.0.1 (DNAT runs before the kernel's martian check:
// CVE-2020-8558), and a container must not reach the host's loopback
// services (route_localnet is on for our bridges). Spy counters in the
// victims' namespaces show that each attack really gets through once its
// rule is deleted, so the test proves the rules do the blocking, not some
// routing accident (the attackers never see a reply either way: their own
// kernels refuse a source of 127.0.0.1). Restore puts the rules back.
func TestLoopbackSpoof(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.network("lb", "172.28.0.0/24")
	web, _ := w.endpoint("lb", "web")
	rogue, rogueAddr := w.endpoint("lb", "rogue")
	w.serve(web, []uint16{90}, nil)
	w.serve(w.host, []uint16{9191}, nil) // a host service, reachable on 127.0.0.1
	w.mustNB("port", "publish", "web", "-p", "127.0.0.1:9090:90")
	w.expectPeer(t, w.host, "tcp", hostPort("127.0.0.1", 9090), "172.28.0.1")

	// Both attackers route 127.0.0.1 out of their only interface; a spy
	// counts what reaches each victim.
	sendLoopbackOut(w, w.outside, "eth0", hostAddr)
	sendLoopbackOut(w, rogue, "eth0", "172.28.0.1")
	webSpy := newSpy(w, web, "ip saddr "+outsideAddr+" tcp dport 90")
	hostSpy := newSpy(w, w.host, "ip saddr "+rogueAddr+" ip daddr 127.0.0.1 tcp dport 9191")
	neighbour := blocked(w.outside, "tcp", hostPort("127.0.0.1", 9090), echo.Timeout)
	container := blocked(rogue, "tcp", hostPort("127.0.0.1", 9191), echo.Timeout)

	w.expectAllBlocked(t, neighbour, container)
	webSpy.expect(t, false, "with LOOPBACK-SPOOF")
	hostSpy.expect(t, false, "with LOOPBACK-SPOOF and LOOPBACK-INPUT")

	// Without LOOPBACK-SPOOF the neighbour's SYNs are DNATed to the
	// container. LOOPBACK-INPUT still stops the container's new packets.
	w.nft("delete", "rule", "ip", "nftbridge", "nat_prerouting", "handle", ruleHandle(t, w, "nat_prerouting", "LOOPBACK-SPOOF"))
	w.expectAllBlocked(t, neighbour, container)
	webSpy.expect(t, true, "without LOOPBACK-SPOOF")
	hostSpy.expect(t, false, "with LOOPBACK-INPUT")
	w.nft("delete", "rule", "ip", "nftbridge", "input", "handle", ruleHandle(t, w, "input", "LOOPBACK-INPUT"))
	w.expectAllBlocked(t, container)
	hostSpy.expect(t, true, "without LOOPBACK-SPOOF and LOOPBACK-INPUT")

	w.mustNB("restore")
	webSpy.mark(t)
	hostSpy.mark(t)
	w.expectAllBlocked(t, neighbour, container)
	webSpy.expect(t, false, "after restore")
	hostSpy.expect(t, false, "after restore")
}

// spy counts the packets matching a rule on a namespace's input hook, in a
// table of its own that runs after ours.
type spy struct {
	w    *world
	ns   string
	seen int // packets counted before the last mark
}

func newSpy(w *world, ns, match string) *spy {
	w.t.Helper()
	for _, cmd := range []string{"add table ip e2espy",
		"add chain ip e2espy input { type filter hook input priority 10; }",
		"add rule ip e2espy input " + match + " counter"} {
		w.must(nsExec(ns, "nft", cmd))
	}
	return &spy{w: w, ns: ns}
}

func (s *spy) packets(t *testing.T) int {
	t.Helper()
	out := s.w.must(nsExec(s.ns, "nft", "list", "chain", "ip", "e2espy", "input")).stdout
	m := regexp.MustCompile(`counter packets (\d+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no counter in %s:\n%s", s.ns, out)
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// mark makes expect look only at packets counted from now on.
func (s *spy) mark(t *testing.T) { s.seen = s.packets(t) }

// expect checks whether anything reached the victim since the last mark.
func (s *spy) expect(t *testing.T, reached bool, when string) {
	t.Helper()
	if n := s.packets(t) - s.seen; (n > 0) != reached {
		t.Errorf("%s: %d attack packets reached %s; want them to %s", when, n, s.ns,
			map[bool]string{true: "arrive", false: "be dropped"}[reached])
	}
}

// sendLoopbackOut makes namespace ns send packets for 127.0.0.1 through dev
// to gateway, as a hostile machine would: its own loopback routes go, and
// route_localnet lets 127/8 leave and come back over dev.
func sendLoopbackOut(w *world, ns, dev, gateway string) {
	w.t.Helper()
	w.must(ipIn(ns, "route", "del", "table", "local", "local", "127.0.0.1", "dev", "lo"))
	w.must(ipIn(ns, "route", "del", "table", "local", "local", "127.0.0.0/8", "dev", "lo"))
	w.must(ipIn(ns, "route", "add", "127.0.0.1/32", "via", gateway, "dev", dev))
	for _, key := range []string{"net.ipv4.conf.all.route_localnet=1", "net.ipv4.conf." + dev + ".route_localnet=1"} {
		w.must(nsExec(ns, "sysctl", "-qw", key))
	}
}

// ruleHandle finds the handle of our rule tagged tag in chain.
func ruleHandle(t *testing.T, w *world, chain, tag string) string {
	t.Helper()
	listing := w.nft("-a", "list", "chain", "ip", "nftbridge", chain)
	m := regexp.MustCompile(`comment "` + regexp.QuoteMeta(tag) + `" # handle (\d+)`).FindStringSubmatch(listing)
	if m == nil {
		t.Fatalf("no rule %q in chain %s:\n%s", tag, chain, listing)
	}
	return m[1]
}
