package nft

import (
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// applyTestNetwork is a network on bridge br-<i> with subnet 172.(16+i).0.0/16
// (adjacent subnets: the masq_subnets ranges touch).
func applyTestNetwork(i int, icc, internal, masq bool) Network {
	return Network{Bridge: fmt.Sprintf("br-%d", i), Subnet: netip.PrefixFrom(netip.AddrFrom4([4]byte{172, byte(16 + i), 0, 0}), 16),
		ICC: icc, Internal: internal, Masquerade: masq}
}

// applyTestEndpoint is container j on network i: 172.(16+i).0.(2+j).
func applyTestEndpoint(i, j int) Endpoint {
	return Endpoint{Bridge: fmt.Sprintf("br-%d", i), Addr: netip.AddrFrom4([4]byte{172, byte(16 + i), 0, byte(2 + j)})}
}

// parityCases is the option matrix: every knob of Desired alone, then
// together.
func parityCases() map[string]Desired {
	addr := netip.MustParseAddr
	web := Port{Proto: ProtoTCP, HostPort: 8080, Addr: addr("172.16.0.2"), ContainerPort: 80}
	return map[string]Desired{
		"empty": {},
		"icc on": {Networks: []Network{applyTestNetwork(0, true, false, true)},
			Endpoints: []Endpoint{applyTestEndpoint(0, 0)}, Ports: []Port{web}},
		"icc off": {Networks: []Network{applyTestNetwork(0, false, false, true)},
			Endpoints: []Endpoint{applyTestEndpoint(0, 0)}, Ports: []Port{web}},
		"internal": {Networks: []Network{applyTestNetwork(0, true, true, true)},
			Endpoints: []Endpoint{applyTestEndpoint(0, 0), applyTestEndpoint(0, 1)}},
		"masquerade off": {Networks: []Network{applyTestNetwork(0, true, false, false)},
			Endpoints: []Endpoint{applyTestEndpoint(0, 0)}, Ports: []Port{web}},
		"host ip bound ports": {Networks: []Network{applyTestNetwork(0, true, false, true)},
			Endpoints: []Endpoint{applyTestEndpoint(0, 0)},
			Ports: []Port{
				{Proto: ProtoTCP, HostIP: addr("127.0.0.1"), HostPort: 8080, Addr: addr("172.16.0.2"), ContainerPort: 80},
				{Proto: ProtoTCP, HostIP: addr("192.168.1.10"), HostPort: 8443, Addr: addr("172.16.0.2"), ContainerPort: 443},
				{Proto: ProtoTCP, HostIP: addr("0.0.0.0"), HostPort: 9000, Addr: addr("172.16.0.2"), ContainerPort: 9000},
			}},
		"udp": {Networks: []Network{applyTestNetwork(0, true, false, true)},
			Endpoints: []Endpoint{applyTestEndpoint(0, 0)},
			Ports: []Port{
				{Proto: ProtoUDP, HostPort: 53, Addr: addr("172.16.0.2"), ContainerPort: 53},
				{Proto: ProtoTCP, HostPort: 53, Addr: addr("172.16.0.2"), ContainerPort: 53},
			}},
		"multiple networks": applyTestDesired(4, 3, 2),
		"element order":     elementOrderDesired(),
	}
}

// elementOrderDesired has keys whose order nft's listing decides in ways a
// string sort would not: bridge names of different lengths, ports on both
// sides of 256 and 32768, addresses across octet boundaries.
func elementOrderDesired() Desired {
	var d Desired
	for i, name := range []string{"a", "zz", "nb-b", "nb-a9", "nb-a10", "br0"} {
		n := applyTestNetwork(i, i%2 == 0, false, true)
		n.Bridge = name
		d.Networks = append(d.Networks, n)
		for j, hostPort := range []uint16{7, 300, 8000, 49153} {
			ep := Endpoint{Bridge: name, Addr: netip.AddrFrom4([4]byte{172, byte(16 + i), byte(j), byte(2 + 100*j)})}
			d.Endpoints = append(d.Endpoints, ep)
			d.Ports = append(d.Ports, Port{Proto: ProtoTCP, HostPort: hostPort + uint16(i), Addr: ep.Addr, ContainerPort: hostPort})
		}
	}
	return d
}

// applyTestDesired is n networks (options varying), each with eps
// endpoints publishing ports ports each.
func applyTestDesired(n, eps, ports int) Desired {
	var d Desired
	for i := range n {
		d.Networks = append(d.Networks, applyTestNetwork(i, i%2 == 0, i%4 == 3, i%3 != 2))
		for j := range eps {
			ep := applyTestEndpoint(i, j)
			d.Endpoints = append(d.Endpoints, ep)
			for k := range ports {
				proto := ProtoTCP
				if k%2 == 1 {
					proto = ProtoUDP
				}
				d.Ports = append(d.Ports, Port{Proto: proto, HostPort: uint16(10000 + i*100 + j*10 + k),
					Addr: ep.Addr, ContainerPort: uint16(80 + k)})
			}
		}
	}
	return d
}

// TestReconcileParity programs each case of the matrix and reads it back
// through nft: the listing must equal RenderTerse and every set's elements
// must equal the model's.
func TestReconcileParity(t *testing.T) {
	for name, d := range parityCases() {
		t.Run(name, func(t *testing.T) {
			ns := newTestNetNS(t)
			a := ns.applier(t)
			rs := mustCompile(t, d)
			if err := a.Reconcile(rs); err != nil {
				t.Fatalf("Reconcile: %v", err)
			}
			checkParity(t, ns, rs)
			// Elements in the order nft lists them, so that `nftbridge
			// ruleset` and `nft list table` read the same.
			if got, want := ns.nft(t, "list", "table", "ip", TableName), Render(rs); got != want {
				t.Errorf("nft list table differs from Render:\n%s", lineDiff(want, got))
			}
			for _, s := range rs.Sets {
				got, err := a.ReadSet(s.Name)
				if err != nil {
					t.Fatalf("ReadSet: %v", err)
				}
				if g, w := strings.Join(modelElementStrings(got), "\n"), strings.Join(modelElementStrings(s), "\n"); g != w {
					t.Errorf("ReadSet(%s) differs from the model:\n%s", s.Name, lineDiff(w, g))
				}
			}
		})
	}
}

// netlinkNoise matches what may differ between two namespaces holding the
// same table: the handle and position numbers after a rule's chain.
var netlinkNoise = regexp.MustCompile(`(?m)^(ip \S+ \S+)( \d+)+$`)

// normaliseNetlinkListing sorts the element lines of each set (hash sets
// list in a per-namespace random order) and drops the interval end element
// at 0.0.0.0 that nft adds before the first range of an interval set (a
// no-op the kernel does not need; we do not send it).
func normaliseNetlinkListing(s string) string {
	var out, elems []string
	flush := func() {
		slices.Sort(elems)
		out, elems = append(out, elems...), nil
	}
	for _, l := range strings.Split(s, "\n") {
		switch {
		case l == "\telement 00000000  : 1 [end]":
		case strings.HasPrefix(l, "\telement "):
			elems = append(elems, l)
		default:
			flush()
			out = append(out, l)
		}
	}
	flush()
	return strings.Join(out, "\n")
}

// TestNetlinkMatchesNFT loads Render's text with `nft -f` in one namespace
// and Reconciles the same ruleset in another: the kernel's view of both
// tables, as `nft --debug=netlink list table` prints it expression by
// expression, must be identical (registers, byte orders, flags, userdata).
func TestNetlinkMatchesNFT(t *testing.T) {
	rs := mustCompile(t, parityCases()["multiple networks"])
	byNFT, byUs := newTestNetNS(t), newTestNetNS(t)
	byNFT.nftFile(t, Render(rs))
	if err := byUs.applier(t).Reconcile(rs); err != nil {
		t.Fatalf("Reconcile: %v", err)
	}
	list := func(ns *testNetNS) string {
		out := ns.nft(t, "--debug=netlink", "list", "table", "ip", TableName)
		return normaliseNetlinkListing(netlinkNoise.ReplaceAllString(out, "$1"))
	}
	if want, got := list(byNFT), list(byUs); want != got {
		t.Errorf("netlink view differs (want: nft -f, got: Reconcile):\n%s", lineDiff(want, got))
	}
	if want, got := byNFT.nft(t, "list", "table", "ip", TableName), byUs.nft(t, "list", "table", "ip", TableName); want != got {
		t.Errorf("nft list table differs (want: nft -f, got: Reconcile):\n%s", lineDiff(want, got))
	}
}
