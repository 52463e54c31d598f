package e2e

import (
	"strings"
	"testing"

	"github.com/nftbridge/nftbridge/e2e/echo"
)

// flowWorld is the world every flow test reads: five networks, one per knob,
// and containers listening on echo ports. Nothing in it changes after setup,
// so the flow subtests run in parallel.
type flowWorld struct {
	*world
	web, webAddr     string // n1: publishes 8080:80, 5353:53/udp, 127.0.0.1:9090:90
	peer, peerAddr   string // n1, ICC on
	other, otherAddr string // n2: publishes 8082:80
	plain, plainAddr string // n3, --masquerade=false
	iso1, iso1Addr   string // n4, --icc=false; publishes 8084:80
	iso2, iso2Addr   string
	int1, int1Addr   string // n5, --internal
	int2, int2Addr   string
}

// n1Gateway and n4Gateway are bridge addresses: what masquerading onto n1
// or n4 shows.
const (
	n1Gateway = "172.21.0.1"
	n4Gateway = "172.24.0.1"
)

func newFlowWorld(t *testing.T) *flowWorld {
	t.Helper()
	w := &flowWorld{world: newWorld(t)}
	w.network("n1", "172.21.0.0/16")
	w.network("n2", "172.22.0.0/16")
	w.network("n3", "172.23.0.0/24", "--masquerade=false")
	w.network("n4", "172.24.0.0/24", "--icc=false")
	w.network("n5", "172.25.0.0/24", "--internal")
	w.web, w.webAddr = w.endpoint("n1", "web")
	w.peer, w.peerAddr = w.endpoint("n1", "peer")
	w.other, w.otherAddr = w.endpoint("n2", "other")
	w.plain, w.plainAddr = w.endpoint("n3", "plain")
	w.iso1, w.iso1Addr = w.endpoint("n4", "iso1")
	w.iso2, w.iso2Addr = w.endpoint("n4", "iso2")
	w.int1, w.int1Addr = w.endpoint("n5", "int1")
	w.int2, w.int2Addr = w.endpoint("n5", "int2")
	w.mustNB("port", "publish", "web", "-p", "8080:80", "-p", "5353:53/udp", "-p", "127.0.0.1:9090:90")
	w.mustNB("port", "publish", "other", "-p", "8082:80")
	w.mustNB("port", "publish", "iso1", "-p", "8084:80")
	// nftbridge turns bridge netfilter on for n4's bridge alone. Turn the
	// namespace-wide switch off (loading br_netfilter turns it on
	// everywhere), so that every flow below proves it needs nothing more.
	w.must(nsExec(w.host, "sysctl", "-qw", "net.bridge.bridge-nf-call-iptables=0"))
	w.serve(w.web, []uint16{80, 81, 90}, []uint16{53})
	for _, ns := range []string{w.peer, w.other, w.plain, w.iso1, w.iso2, w.int1, w.int2} {
		w.serve(ns, []uint16{80, 81}, nil)
	}
	return w
}

// TestFlows sends real packets through every rule of the forward and NAT
// chains, one subtest per behaviour Docker users rely on.
func TestFlows(t *testing.T) {
	t.Parallel()
	w := newFlowWorld(t)
	for _, tc := range []struct {
		name string
		run  func(t *testing.T)
	}{
		{"outbound masquerade", w.outboundMasquerade},
		{"outbound without masquerade", w.outboundPlain},
		{"published tcp and udp", w.published},
		{"unpublished ports", w.unpublished},
		{"direct access to container addresses", w.directAccess},
		{"networks isolated both ways", w.isolation},
		{"icc on", w.iccOn},
		{"icc off", w.iccOff},
		{"internal network", w.internal},
		{"hairpin", w.hairpin},
		{"loopback-bound port", w.loopbackPort},
		{"host reaches published ports and containers", w.hostToContainers},
		{"host sysctls", w.hostSysctls},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.run(t)
		})
	}
}

// The outside sees the host's address, not the container's.
func (w *flowWorld) outboundMasquerade(t *testing.T) {
	w.expectPeer(t, w.web, "tcp", hostPort(outsideAddr, outsideTCP), hostAddr)
	w.expectPeer(t, w.web, "udp", hostPort(outsideAddr, outsideUDP), hostAddr)
}

// The outside sees the container; it routes the subnet back via the host.
func (w *flowWorld) outboundPlain(t *testing.T) {
	w.expectPeer(t, w.plain, "tcp", hostPort(outsideAddr, outsideTCP), w.plainAddr)
	w.expectPeer(t, w.plain, "udp", hostPort(outsideAddr, outsideUDP), w.plainAddr)
}

// DNAT keeps the client's address.
func (w *flowWorld) published(t *testing.T) {
	w.expectPeer(t, w.outside, "tcp", hostPort(hostAddr, 8080), outsideAddr)
	w.expectPeer(t, w.outside, "udp", hostPort(hostAddr, 5353), outsideAddr)
	w.expectPeer(t, w.outside, "tcp", hostPort(hostAddr, 8082), outsideAddr)
}

// Nothing translates unpublished ports, so the host's own stack answers: RST
// for TCP, ICMP port unreachable for UDP. (web listens on 81.)
func (w *flowWorld) unpublished(t *testing.T) {
	w.expectAllBlocked(t,
		blocked(w.outside, "tcp", hostPort(hostAddr, 81), echo.Refused),
		blocked(w.outside, "tcp", hostPort(hostAddr, 8081), echo.Refused),
		blocked(w.outside, "udp", hostPort(hostAddr, 5354), echo.Refused))
}

// The outside routes 172.16.0.0/12 to the host. Published or not, a port
// addressed directly is new traffic without DNAT: INBOUND-DROP, timeouts.
func (w *flowWorld) directAccess(t *testing.T) {
	w.expectAllBlocked(t,
		blocked(w.outside, "tcp", hostPort(w.webAddr, 80), echo.Timeout),
		blocked(w.outside, "udp", hostPort(w.webAddr, 53), echo.Timeout),
		blocked(w.outside, "tcp", hostPort(w.webAddr, 81), echo.Timeout),
		blocked(w.outside, "tcp", hostPort(w.plainAddr, 80), echo.Timeout))
}

func (w *flowWorld) isolation(t *testing.T) {
	w.expectAllBlocked(t,
		blocked(w.web, "tcp", hostPort(w.otherAddr, 80), echo.Timeout),
		blocked(w.other, "tcp", hostPort(w.webAddr, 80), echo.Timeout),
		blocked(w.other, "tcp", hostPort(w.webAddr, 81), echo.Timeout),
		blocked(w.plain, "tcp", hostPort(w.iso1Addr, 80), echo.Timeout))
}

func (w *flowWorld) iccOn(t *testing.T) {
	w.expectPeer(t, w.web, "tcp", hostPort(w.peerAddr, 80), w.webAddr)
	w.expectPeer(t, w.peer, "tcp", hostPort(w.webAddr, 81), w.peerAddr)
}

// ICC off isolates members from each other, not from the world.
func (w *flowWorld) iccOff(t *testing.T) {
	w.expectAllBlocked(t,
		blocked(w.iso1, "tcp", hostPort(w.iso2Addr, 80), echo.Timeout),
		blocked(w.iso2, "tcp", hostPort(w.iso1Addr, 80), echo.Timeout))
	w.expectPeer(t, w.iso1, "tcp", hostPort(outsideAddr, outsideTCP), hostAddr)
	// A member's published port is open to its neighbours through a host
	// address, as to everyone else: icc_off accepts it after DNAT (HAIRPIN
	// masquerades it to the gateway). Port 80 addressed directly stays
	// blocked above.
	w.expectPeer(t, w.iso2, "tcp", hostPort(hostAddr, 8084), n4Gateway)
	w.expectPeer(t, w.other, "tcp", hostPort(hostAddr, 8084), w.otherAddr)
	// The table filters IPv4 only, and IPv6 link-local addresses need no
	// router: members with IPv6 on could talk past ICC off. IPv6 is off on
	// every interface of the network, so they have none.
	for ns, dev := range map[string]string{w.iso1: "eth0", w.iso2: "eth0", w.host: "nb" + w.id + "n4"} {
		if res := ipIn(ns, "-6", "addr", "show", "dev", dev); res.code != 0 || strings.TrimSpace(res.stdout) != "" {
			t.Errorf("%s in %s has IPv6 addresses (or none could be listed): %v", dev, ns, res)
		}
	}
}

// No way in or out of an internal network, except between its members, and
// no publishing on it.
func (w *flowWorld) internal(t *testing.T) {
	w.expectAllBlocked(t,
		// Dropped (timeout), or no route at all (as with Docker, which
		// gives internal endpoints no default route).
		blocked(w.int1, "tcp", hostPort(outsideAddr, outsideTCP), echo.Timeout, echo.Unreachable),
		blocked(w.int1, "udp", hostPort(outsideAddr, outsideUDP), echo.Timeout, echo.Unreachable),
		blocked(w.outside, "tcp", hostPort(w.int1Addr, 80), echo.Timeout),
		blocked(w.web, "tcp", hostPort(w.int1Addr, 80), echo.Timeout),
		blocked(w.int1, "tcp", hostPort(w.webAddr, 81), echo.Timeout, echo.Unreachable),
		// Nor through the host: Docker drops anything from an internal
		// bridge whose destination is outside its subnet, DNAT or not.
		blocked(w.int1, "tcp", hostPort(hostAddr, 8080), echo.Timeout, echo.Unreachable),
		blocked(w.int1, "udp", hostPort(hostAddr, 5353), echo.Timeout, echo.Unreachable))
	w.expectPeer(t, w.int1, "tcp", hostPort(w.int2Addr, 80), w.int1Addr)
	w.expectPeer(t, w.int2, "tcp", hostPort(w.int1Addr, 81), w.int2Addr)
	res := w.nb("port", "publish", "int1", "-p", "9999:80")
	if res.code == 0 || !strings.Contains(res.stderr, `"n5"`) || !strings.Contains(res.stderr, "internal") {
		t.Errorf("publishing on an internal network: want a failure naming network \"n5\" as internal; got %v", res)
	}
}

func (w *flowWorld) hairpin(t *testing.T) {
	// Its own published port: HAIRPIN masquerades to the gateway, so the
	// reply comes back through the host's conntrack.
	w.expectPeer(t, w.web, "tcp", hostPort(hostAddr, 8080), n1Gateway)
	w.expectPeer(t, w.web, "udp", hostPort(hostAddr, 5353), n1Gateway)
	// A neighbour on the same bridge is masqueraded too (HAIRPIN matches
	// any endpoint of the output bridge).
	w.expectPeer(t, w.peer, "tcp", hostPort(hostAddr, 8080), n1Gateway)
	// Another network's published port, through the host: allowed by
	// PUBLISHED before ISOLATION, and not masqueraded.
	w.expectPeer(t, w.other, "tcp", hostPort(hostAddr, 8080), w.otherAddr)
	w.expectPeer(t, w.web, "tcp", hostPort(hostAddr, 8082), w.webAddr)
}

// nat_output DNATs the host's own connection; LOOPBACK-MASQ replaces
// 127.0.0.1, which must never appear on a bridge. Bound to 127.0.0.1 only:
// the host's own stack refuses every other way in.
func (w *flowWorld) loopbackPort(t *testing.T) {
	w.expectPeer(t, w.host, "tcp", hostPort("127.0.0.1", 9090), n1Gateway)
	w.expectAllBlocked(t,
		blocked(w.outside, "tcp", hostPort(hostAddr, 9090), echo.Refused),
		blocked(w.host, "tcp", hostPort(hostAddr, 9090), echo.Refused),
		blocked(w.other, "tcp", hostPort(hostAddr, 9090), echo.Refused))
}

// The host reaches published ports through its own addresses, and every
// container directly (its traffic never passes the forward hook).
func (w *flowWorld) hostToContainers(t *testing.T) {
	w.expectPeer(t, w.host, "tcp", hostPort(hostAddr, 8080), hostAddr)
	w.expectPeer(t, w.host, "tcp", hostPort("127.0.0.1", 8080), n1Gateway)
	w.expectPeer(t, w.host, "tcp", hostPort(w.webAddr, 81), n1Gateway)
	w.expectPeer(t, w.host, "tcp", hostPort(w.iso1Addr, 80), "172.24.0.1")
}

// nftbridge turns these on in its own namespace: forwarding, route_localnet
// on its bridges, and bridge netfilter only on the bridge with ICC off.
func (w *flowWorld) hostSysctls(t *testing.T) {
	for _, key := range []string{"net/ipv4/ip_forward", "net/ipv4/conf/nb" + w.id + "n1/route_localnet"} {
		res := nsExec(w.host, "cat", "/proc/sys/"+key)
		if strings.TrimSpace(res.stdout) != "1" {
			t.Errorf("host namespace %s: %v; want 1", key, res)
		}
	}
	for bridge, want := range map[string]string{"n4": "nf_call_iptables 1", "n1": "nf_call_iptables 0"} {
		res := ipIn(w.host, "-d", "link", "show", "nb"+w.id+bridge)
		if !strings.Contains(res.stdout, want) {
			t.Errorf("bridge of %s: want %q in %v", bridge, want, res)
		}
	}
}
