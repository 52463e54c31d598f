// Package bench is nftbridge's benchmark: it builds a topology of network
// namespaces (an outside client, a host with N bridge networks, a container
// running a small Go server), loads one firewall layout at a time — none,
// Docker's iptables rules through iptables-legacy and iptables-nft, and
// nftbridge — and measures the data plane (connections, transactions and
// UDP packets per second through a published port) and the control plane
// (publish, network create, restore, memory). `make bench` runs it through
// cmd/nbbench and writes docs/benchmarks/.
package bench

import (
	"fmt"
	"math/bits"
	"net/netip"
	"slices"
)

// Ports and addresses every plan shares. The outside link uses 198.18.0.0/24
// (RFC 2544's benchmarking range); bridges live in 172.16.0.0/12 like
// Docker's. All of them exist only inside the benchmark's namespaces.
const (
	ServerTCPPort  = 80    // the container's TCP echo server
	ServerUDPPort  = 9000  // the container's UDP sink
	OutsideUDPPort = 9001  // the outside namespace's UDP sink (container → outside)
	FirstHostPort  = 10000 // TCP host ports: FirstHostPort .. FirstHostPort+P-1
	UDPHostPort    = 21000 // the one published UDP port, on the measured container
)

var (
	bridgePool  = netip.MustParsePrefix("172.16.0.0/12")
	outsideAddr = netip.MustParseAddr("198.18.0.2")
	hostAddr    = netip.MustParseAddr("198.18.0.1")
	outsideNet  = netip.MustParsePrefix("198.18.0.0/24")
)

// Plan is one topology's desired state: N networks and P published TCP
// ports, one container per port as `docker run -p HOST:80` gives, spread
// round-robin over the networks. The last container is the measured one: it
// is real (a namespace with a server), sits on the last network, holds the
// last-published TCP port (the worst case for a linear chain) and one UDP
// port published after it. The others are addresses on bridges with no
// container behind them.
type Plan struct {
	Networks  []PlanNetwork
	Endpoints []PlanEndpoint
}

// PlanNetwork is one bridge network.
type PlanNetwork struct {
	Name    string
	Bridge  string
	Subnet  netip.Prefix
	Gateway netip.Addr
}

// PlanEndpoint is one container address with its published ports.
type PlanEndpoint struct {
	Name    string
	Network int // index into Plan.Networks
	Addr    netip.Addr
	Ports   []PlanPort
}

// PlanPort is one published port.
type PlanPort struct {
	Proto         string // "tcp" or "udp"
	HostPort      uint16
	ContainerPort uint16
}

// NewPlan lays out n networks and p published TCP ports.
func NewPlan(n, p int) (*Plan, error) {
	if n < 1 || p < 1 || p > 10000 || n > 4096 {
		return nil, fmt.Errorf("plan: want 1 ≤ networks ≤ 4096 and 1 ≤ ports ≤ 10000, got %d and %d", n, p)
	}
	plan := &Plan{}
	for i := 0; i < n; i++ {
		subnet := subnetSlot(n, i)
		plan.Networks = append(plan.Networks, PlanNetwork{
			Name: fmt.Sprintf("bn%04d", i), Bridge: BridgeName(i),
			Subnet: subnet, Gateway: subnet.Addr().Next(),
		})
	}
	perNetwork := make([]int, n) // fake endpoints placed so far
	for j := 0; j < p; j++ {
		// Backwards round-robin: endpoint p-1 lands on network n-1.
		net := n - 1 - (p-1-j)%n
		gw := plan.Networks[net].Gateway
		var addr netip.Addr
		if j == p-1 {
			addr = gw.Next() // the real container: always .2 of the last network
		} else {
			addr = addAddr(gw, 2+perNetwork[net])
			perNetwork[net]++
		}
		ep := PlanEndpoint{Name: fmt.Sprintf("ep%05d", j), Network: net, Addr: addr,
			Ports: []PlanPort{{Proto: "tcp", HostPort: uint16(FirstHostPort + j), ContainerPort: ServerTCPPort}}}
		plan.Endpoints = append(plan.Endpoints, ep)
	}
	last := &plan.Endpoints[p-1]
	last.Ports = append(last.Ports, PlanPort{Proto: "udp", HostPort: UDPHostPort, ContainerPort: ServerUDPPort})
	return plan, nil
}

// BridgeName is the name of network i's bridge.
func BridgeName(i int) string { return fmt.Sprintf("br-b%04d", i) }

// subnetSlot is network i's subnet when n networks share the pool: the pool
// split into the fewest equal prefixes that give each network its own.
func subnetSlot(n, i int) netip.Prefix {
	extra := bits.Len(uint(n - 1)) // ceil(log2 n)
	size := bridgePool.Bits() + extra
	return netip.PrefixFrom(addAddr(bridgePool.Addr(), i<<(32-size)), size)
}

// SpareSubnet is a subnet no network of an n-network plan uses (for the
// "one more network" measurement), with its bridge name.
func SpareSubnet(n int) (netip.Prefix, string) {
	return subnetSlot(n, n), BridgeName(n)
}

// addAddr is IPv4 address a plus k.
func addAddr(a netip.Addr, k int) netip.Addr {
	b := a.As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	v += uint32(k)
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// Measured is the real container's endpoint.
func (p *Plan) Measured() PlanEndpoint { return p.Endpoints[len(p.Endpoints)-1] }

// MeasuredOnly is the plan cut down to the measured network and container,
// with the same names, addresses and ports.
func (p *Plan) MeasuredOnly() *Plan {
	ep := p.Measured()
	ep.Ports = slices.Clone(ep.Ports)
	ep.Network = 0
	return &Plan{Networks: []PlanNetwork{p.MeasuredNetwork()}, Endpoints: []PlanEndpoint{ep}}
}

// MeasuredNetwork is the real container's network.
func (p *Plan) MeasuredNetwork() PlanNetwork { return p.Networks[p.Measured().Network] }

// TCPPorts is the number of published TCP ports.
func (p *Plan) TCPPorts() int { return len(p.Endpoints) }
