package bench

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"time"
)

// Stack is one copy of the topology:
//
//	outside ns                host ns                          container ns
//	eth0 198.18.0.2 ── vout 198.18.0.1   br-b0000 … br-bNNNN ── eth0 (.2 of the last subnet)
//	(client, UDP sink)     (firewall under test)   └ nbbc0      (server, UDP sink/sender)
//
// iptables-legacy cannot be unloaded from a namespace (its tables stay
// registered, with conntrack, until the namespace dies), so it gets a stack
// of its own; every other layout shares the main stack, one at a time.
type Stack struct {
	Tag       string
	Outside   string
	Host      string
	Container string
	N         int
	Real      RealContainer
	server    *Proc
}

// realVeth is the host end of the measured container's veth.
const realVeth = "nbbc0"

// BuildStack creates the namespaces, links, n bridges and the container
// with its server.
func (s *Sandbox) BuildStack(ctx context.Context, tag string, n int) (*Stack, error) {
	st := &Stack{Tag: tag, N: n}
	names := make([]string, 3)
	var err error
	for i, role := range []string{"o", "h", "c"} {
		if names[i], err = s.NewNS(tag + role); err != nil {
			return nil, err
		}
	}
	st.Outside, st.Host, st.Container = names[0], names[1], names[2]
	st.Real = RealContainer{NetNS: st.Container, HostVeth: realVeth}
	plan, err := NewPlan(n, 1)
	if err != nil {
		return nil, err
	}
	if err := st.wire(plan); err != nil {
		return nil, err
	}
	if err := noBridgeNetfilter(st.Host); err != nil {
		return nil, err
	}
	if err := createBridges(st.Host, plan); err != nil {
		return nil, err
	}
	if err := st.attachContainer(plan); err != nil {
		return nil, err
	}
	st.server, err = s.StartRole(ctx, st.Container, "server")
	if err != nil {
		return nil, err
	}
	return st, nil
}

// Delete removes the stack's namespaces and processes.
func (st *Stack) Delete(s *Sandbox) {
	for _, ns := range []string{st.Outside, st.Container, st.Host} {
		s.DelNS(ns)
	}
}

func runAll(cmds [][]string) error {
	for _, c := range cmds {
		if _, err := Sh("", c...); err != nil {
			return err
		}
	}
	return nil
}

// wire links the outside namespace to the host and sets the sysctls.
func (st *Stack) wire(plan *Plan) error {
	o, h := st.Outside, st.Host
	return runAll([][]string{
		{"ip", "link", "add", "eth0", "netns", o, "type", "veth", "peer", "name", "vout", "netns", h},
		{"ip", "-n", o, "addr", "add", netip.PrefixFrom(outsideAddr, outsideNet.Bits()).String(), "dev", "eth0"},
		{"ip", "-n", o, "link", "set", "eth0", "up"},
		{"ip", "-n", o, "route", "add", "default", "via", hostAddr.String()},
		{"ip", "-n", h, "addr", "add", netip.PrefixFrom(hostAddr, outsideNet.Bits()).String(), "dev", "vout"},
		{"ip", "-n", h, "link", "set", "vout", "up"},
		{"ip", "netns", "exec", h, "sysctl", "-qw", "net.ipv4.ip_forward=1"},
		// The client opens tens of thousands of connections a second.
		{"ip", "netns", "exec", o, "sysctl", "-qw", "net.ipv4.ip_local_port_range=1024 65535"},
		{"ip", "netns", "exec", o, "sysctl", "-qw", "net.ipv4.tcp_tw_reuse=1"},
	})
}

// bridgeNFSysctl is br_netfilter's switch for bridged IPv4 (per namespace).
const bridgeNFSysctl = "/proc/sys/net/bridge/bridge-nf-call-iptables"

// noBridgeNetfilter turns br_netfilter off in the host namespace, where the
// module is loaded: it then defaults to on in every new namespace, and would
// add its cost to every layout's traffic out of the container, plain
// forwarding's too. None of the benchmark's networks has ICC off, so
// neither nftbridge nor Docker 28+ asks for it; a layout that turns it on
// anyway pays for that in its own figures.
func noBridgeNetfilter(ns string) error {
	_, err := Sh(ns, "sh", "-c", "if [ -e "+bridgeNFSysctl+" ]; then echo 0 > "+bridgeNFSysctl+"; fi")
	return err
}

// createBridges creates the plan's bridges, with their gateway addresses,
// in one `ip -batch`.
func createBridges(ns string, plan *Plan) error {
	var b strings.Builder
	for _, n := range plan.Networks {
		fmt.Fprintf(&b, "link add %s type bridge\n", n.Bridge)
		fmt.Fprintf(&b, "addr add %s dev %s\n", netip.PrefixFrom(n.Gateway, n.Subnet.Bits()), n.Bridge)
		fmt.Fprintf(&b, "link set %s up\n", n.Bridge)
	}
	_, err := ShInput("", strings.NewReader(b.String()), "ip", "-n", ns, "-batch", "-")
	return err
}

// attachContainer gives the container namespace its veth on the last
// network, with the measured address and a default route.
func (st *Stack) attachContainer(plan *Plan) error {
	n := plan.MeasuredNetwork()
	addr := netip.PrefixFrom(plan.Measured().Addr, n.Subnet.Bits())
	c, h := st.Container, st.Host
	return runAll([][]string{
		{"ip", "link", "add", "eth0", "netns", c, "type", "veth", "peer", "name", realVeth, "netns", h},
		{"ip", "-n", c, "addr", "add", addr.String(), "dev", "eth0"},
		{"ip", "-n", c, "link", "set", "eth0", "up"},
		{"ip", "-n", c, "route", "add", "default", "via", n.Gateway.String()},
		{"ip", "-n", h, "link", "set", realVeth, "master", n.Bridge},
		{"ip", "-n", h, "link", "set", realVeth, "up"},
	})
}

// Dest is where a layout's traffic goes: through the published ports
// on the host address, or (layout none) straight to the container.
type Dest struct {
	TCP, UDP string // from outside
	Out      string // from the container to the outside sink
}

// PublishedTargets goes through the measured container's published ports.
func PublishedTargets(plan *Plan) Dest {
	tcp := plan.Measured().Ports[0].HostPort
	return Dest{
		TCP: netip.AddrPortFrom(hostAddr, tcp).String(),
		UDP: netip.AddrPortFrom(hostAddr, UDPHostPort).String(),
		Out: netip.AddrPortFrom(outsideAddr, OutsideUDPPort).String(),
	}
}

// DirectTargets routes straight to the container's address.
func DirectTargets(plan *Plan) Dest {
	addr := plan.Measured().Addr
	return Dest{
		TCP: netip.AddrPortFrom(addr, ServerTCPPort).String(),
		UDP: netip.AddrPortFrom(addr, ServerUDPPort).String(),
		Out: netip.AddrPortFrom(outsideAddr, OutsideUDPPort).String(),
	}
}

// Probe reports whether one TCP exchange from outside to addr succeeds.
func (s *Sandbox) Probe(st *Stack, addr string, timeout time.Duration) bool {
	_, err := s.RunRole(st.Outside, "probe", "-addr", addr, "-timeout", timeout.String())
	return err == nil
}
