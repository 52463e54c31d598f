package main

import (
	"fmt"
	"strconv"

	"github.com/nftbridge/nftbridge/bridge"
	"github.com/nftbridge/nftbridge/bridge/store"
)

func networkCommand() *command {
	return &command{name: "network", help: "Manage bridge networks.", subs: []*command{
		{name: "create", help: "Create a bridge network.", run: runNetworkCreate},
		{name: "ls", help: "List networks.", run: runNetworkLs},
		{name: "inspect", help: "Show a network in detail.", run: runNetworkInspect},
		{name: "rm", help: "Remove a network.", run: runNetworkRm},
	}}
}

func runNetworkCreate(a *app, args []string) error {
	f := newFlags("nftbridge network create", "[OPTIONS] NAME", "Create a bridge network with its own subnet and firewall elements.", a)
	var subnet prefixFlag
	var gateway, hostIP addrFlag
	f.Var(&subnet, "subnet", "subnet in CIDR form (default: the first free subnet of Docker's pools)")
	f.Var(&gateway, "gateway", "gateway address (default: the first address of the subnet)")
	f.Var(&hostIP, "host-ip", "default host address for published ports (default: all)")
	internal := f.Bool("internal", false, "isolate the network: no traffic in or out except between its members")
	icc := f.Bool("icc", true, "allow containers on this network to talk to each other")
	masq := f.Bool("masquerade", true, "masquerade outbound traffic with the host's address")
	bridgeName := f.String("bridge", "", "bridge interface name, at most 15 characters (default nb-<id>)")
	mtu := f.Int("mtu", 0, "MTU of the bridge and veths (default: kernel default)")
	pos, err := f.parse(args, 1, 1)
	if err != nil {
		return err
	}
	opts := bridge.DefaultNetworkOptions(pos[0])
	opts.Subnet, opts.Gateway, opts.HostIP = subnet.p, gateway.a, hostIP.a
	opts.Internal, opts.ICC, opts.Masquerade = *internal, *icc, *masq
	opts.Bridge, opts.MTU = *bridgeName, *mtu
	eng, err := a.engine()
	if err != nil {
		return err
	}
	n, err := eng.CreateNetwork(opts)
	if err != nil {
		return err
	}
	a.log.Info("network created", "network", n.Name, "id", n.ID[:12], "bridge", n.Bridge, "subnet", n.Subnet, "gateway", n.Gateway)
	fmt.Fprintln(a.stdout, n.ID)
	return nil
}

func runNetworkLs(a *app, args []string) error {
	f := newFlags("nftbridge network ls", "[--format table|json]", "List networks.", a)
	format := formatFlag(f)
	if _, err := f.parse(args, 0, 0); err != nil {
		return err
	}
	if err := checkFormat(*format); err != nil {
		return err
	}
	st, err := a.state()
	if err != nil {
		return err
	}
	nets := sortedNetworks(st)
	if *format == "json" {
		return writeJSON(a.stdout, nets)
	}
	tw := newTable(a.stdout)
	fmt.Fprintln(tw, "NETWORK ID\tNAME\tBRIDGE\tSUBNET\tGATEWAY\tOPTIONS\tENDPOINTS")
	for _, n := range nets {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\n", short(n.ID), n.Name, n.Bridge, n.Subnet, n.Gateway,
			networkFlags(n), len(st.EndpointsOn(n.Name)))
	}
	return tw.Flush()
}

func networkFlags(n *store.Network) string {
	out := ""
	add := func(s string) {
		if out != "" {
			out += ","
		}
		out += s
	}
	if n.Internal {
		add("internal")
	}
	if !n.ICC {
		add("icc=false")
	}
	if !n.Masquerade && !n.Internal {
		add("masquerade=false")
	}
	if n.HostIP.IsValid() {
		add("host-ip=" + n.HostIP.String())
	}
	if n.MTU != 0 {
		add("mtu=" + strconv.Itoa(n.MTU))
	}
	if out == "" {
		return "-"
	}
	return out
}

// networkDetail is what `network inspect` prints.
type networkDetail struct {
	*store.Network
	Endpoints []*store.Endpoint
}

func runNetworkInspect(a *app, args []string) error {
	f := newFlags("nftbridge network inspect", "[--format json] NAME", "Show a network, its endpoints and their ports (JSON).", a)
	format := f.String("format", "json", "output format: json")
	pos, err := f.parse(args, 1, 1)
	if err != nil {
		return err
	}
	if *format != "json" {
		return usagef("invalid --format %q: inspect prints json", *format)
	}
	st, err := a.state()
	if err != nil {
		return err
	}
	n, ok := st.Networks[pos[0]]
	if !ok {
		return &bridge.NotFoundError{Kind: "network", Name: pos[0]}
	}
	return writeJSON(a.stdout, networkDetail{Network: n, Endpoints: st.EndpointsOn(n.Name)})
}

func runNetworkRm(a *app, args []string) error {
	f := newFlags("nftbridge network rm", "[--force] NAME", "Remove a network: its firewall elements, then its bridge.", a)
	force := f.Bool("force", false, "also remove the network's endpoints")
	pos, err := f.parse(args, 1, 1)
	if err != nil {
		return err
	}
	eng, err := a.engine()
	if err != nil {
		return err
	}
	if err := eng.RemoveNetwork(pos[0], *force); err != nil {
		return err
	}
	a.log.Info("network removed", "network", pos[0])
	return nil
}

func short(id string) string { return id[:min(12, len(id))] }
