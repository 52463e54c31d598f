package bench

import (
	"fmt"
	"net/netip"
)

// LayoutFloor is a diagnostic layout measured at the largest point only:
// the least an nftables firewall with published ports must do — conntrack,
// one DNAT rule per measured port and a masquerade — and nothing else (no
// filtering, no isolation). The gap from none to it is the price of
// stateful NAT itself; the gap from it to nftbridge is nftbridge's rules.
const LayoutFloor = "nat-floor"

// FloorRules is the nft text of the floor layout for a plan.
func FloorRules(p *Plan) string {
	ep, n := p.Measured(), p.MeasuredNetwork()
	tcp := ep.Ports[0]
	return fmt.Sprintf(`table ip nbfloor {
	chain prerouting {
		type nat hook prerouting priority dstnat; policy accept;
		ip daddr %[1]s tcp dport %[2]d dnat to %[3]s:%[4]d
		ip daddr %[1]s udp dport %[5]d dnat to %[3]s:%[6]d
	}
	chain postrouting {
		type nat hook postrouting priority srcnat; policy accept;
		ip saddr %[7]s oifname != %[8]q masquerade
	}
}
`, hostAddr, tcp.HostPort, ep.Addr, tcp.ContainerPort, UDPHostPort, ServerUDPPort,
		netip.PrefixFrom(n.Subnet.Addr(), n.Subnet.Bits()), n.Bridge)
}
