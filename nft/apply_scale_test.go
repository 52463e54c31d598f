package nft

import (
	"fmt"
	"net/netip"
	"testing"
	"time"
)

// applyScaleDesired is networks networks (10.x.y.0/24, one container each)
// and ports published ports spread over the containers, tcp and udp.
func applyScaleDesired(networks, ports int) Desired {
	var d Desired
	for n := range networks {
		bridge := fmt.Sprintf("br-%d", n)
		d.Networks = append(d.Networks, Network{Bridge: bridge,
			Subnet: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(n / 256), byte(n % 256), 0}), 24),
			ICC:    n%2 == 0, Internal: n%7 == 6, Masquerade: n%3 != 0})
		d.Endpoints = append(d.Endpoints, Endpoint{Bridge: bridge,
			Addr: netip.AddrFrom4([4]byte{10, byte(n / 256), byte(n % 256), 2})})
	}
	for p := range ports {
		d.Ports = append(d.Ports, scalePort(d, p))
	}
	return d
}

// scalePort is published port number p of applyScaleDesired.
func scalePort(d Desired, p int) Port {
	proto := ProtoTCP
	if p%2 == 1 {
		proto = ProtoUDP
	}
	return Port{Proto: proto, HostPort: uint16(10000 + p/2), Addr: d.Endpoints[p%len(d.Endpoints)].Addr,
		ContainerPort: uint16(1 + p%1000)}
}

// withOnePortMore is d with one more published port.
func withOnePortMore(d Desired) Desired {
	d.Ports = append(append([]Port(nil), d.Ports...), scalePort(d, len(d.Ports)))
	return d
}

// TestScale: 1,000 networks and 10,000 published ports go in one batch
// (socket buffers and element chunking hold), and adding one port to the
// 10,000-port map is one small batch.
func TestScale(t *testing.T) {
	if testing.Short() {
		t.Skip("scale test skipped in -short mode")
	}
	ns := newTestNetNS(t)
	a := ns.applier(t)
	d := applyScaleDesired(1000, 10000)
	rs := mustCompile(t, d)

	start := time.Now()
	mustReconcile(t, a, rs)
	t.Logf("Reconcile: %d rules, %d elements, %v", rs.RuleCount(), rs.ElementCount(), time.Since(start))
	start = time.Now()
	mustReconcile(t, a, rs)
	t.Logf("Reconcile again (elements read back, no change to send): %v", time.Since(start))
	checkParity(t, ns, rs)

	more := mustCompile(t, withOnePortMore(d))
	start = time.Now()
	mustUpdate(t, a, rs, more)
	t.Logf("Update adding one port to a %d-port map: %v", len(d.Ports), time.Since(start))
	got, err := a.ReadSet(MapPortDNAT)
	if err != nil {
		t.Fatalf("ReadSet: %v", err)
	}
	if len(got.Elements) != len(d.Ports)+1 {
		t.Errorf("%s has %d elements after Update, want %d", MapPortDNAT, len(got.Elements), len(d.Ports)+1)
	}
	checkParity(t, ns, more)
}

// TestRuleCountIsConstant: growth is elements, never rules. 200 networks
// with 5,000 ports compile to the rules of 1 network with 1 port.
func TestRuleCountIsConstant(t *testing.T) {
	small := mustCompile(t, applyScaleDesired(1, 1))
	big := mustCompile(t, applyScaleDesired(200, 5000))
	if small.RuleCount() != big.RuleCount() {
		t.Fatalf("rules: %d for 1 network/1 port, %d for 200 networks/5000 ports", small.RuleCount(), big.RuleCount())
	}
	if RenderTerse(small) != RenderTerse(big) {
		t.Errorf("rulesets differ in more than elements:\n%s", lineDiff(RenderTerse(small), RenderTerse(big)))
	}
}

// TestKernelRuleCountIsConstant: the kernel lists the same number of rules
// for 1 network with 1 port as for 200 networks with 5,000 ports: the
// compiled rule count.
func TestKernelRuleCountIsConstant(t *testing.T) {
	small := mustCompile(t, applyScaleDesired(1, 1))
	big := mustCompile(t, applyScaleDesired(200, 5000))
	for _, rs := range []*Ruleset{small, big} {
		ns := newTestNetNS(t)
		mustReconcile(t, ns.applier(t), rs)
		checkRuleCount(t, ns, rs)
	}
}
