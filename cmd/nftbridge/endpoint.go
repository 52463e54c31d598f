package main

import (
	"fmt"
	"strings"

	"github.com/nftbridge/nftbridge/bridge"
	"github.com/nftbridge/nftbridge/ports"
)

func endpointCommand() *command {
	return &command{name: "endpoint", help: "Manage endpoints (network namespaces attached to networks).", subs: []*command{
		{name: "add", help: "Attach a network namespace to a network.", run: runEndpointAdd},
		{name: "ls", help: "List endpoints.", run: runEndpointLs},
		{name: "rm", help: "Detach an endpoint and remove its ports.", run: runEndpointRm},
	}}
}

func runEndpointAdd(a *app, args []string) error {
	f := newFlags("nftbridge endpoint add", "--network NET [--ip IP] [--name NAME] NETNS",
		"Attach NETNS (a name under /run/netns or a path such as /proc/PID/ns/net) to a network:\n"+
			"a veth pair from the bridge into the namespace as eth0, addressed, default route via the gateway.", a)
	network := f.String("network", "", "network to attach to (required)")
	name := f.String("name", "", "endpoint name (default: the namespace's name)")
	var ip addrFlag
	f.Var(&ip, "ip", "address inside the network's subnet (default: the first free one)")
	pos, err := f.parse(args, 1, 1)
	if err != nil {
		return err
	}
	if *network == "" {
		return usagef("nftbridge endpoint add: --network is required")
	}
	eng, err := a.engine()
	if err != nil {
		return err
	}
	ep, err := eng.AddEndpoint(bridge.EndpointOptions{Network: *network, Name: *name, Addr: ip.a, NetNS: pos[0]})
	if err != nil {
		return err
	}
	a.log.Info("endpoint added", "endpoint", ep.Name, "network", ep.Network, "addr", ep.Addr, "veth", ep.HostVeth)
	fmt.Fprintln(a.stdout, ep.Addr)
	return nil
}

func runEndpointLs(a *app, args []string) error {
	f := newFlags("nftbridge endpoint ls", "[--format table|json]", "List endpoints.", a)
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
	eps := sortedEndpoints(st)
	if *format == "json" {
		return writeJSON(a.stdout, eps)
	}
	tw := newTable(a.stdout)
	fmt.Fprintln(tw, "NAME\tNETWORK\tADDRESS\tNETNS\tVETH\tPORTS")
	for _, ep := range eps {
		var published []string
		for _, p := range ep.Ports {
			proto, _ := ports.ParseProto(p.Proto)
			published = append(published, ports.Binding{Proto: proto, HostIP: p.HostIP, HostPort: p.HostPort, ContainerPort: p.ContainerPort}.String())
		}
		list := strings.Join(published, ", ")
		if list == "" {
			list = "-"
		}
		netns := ep.NetNS
		if netns == "" {
			netns = "(docker)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", ep.Name, ep.Network, ep.Addr, netns, ep.HostVeth, list)
	}
	return tw.Flush()
}

func runEndpointRm(a *app, args []string) error {
	f := newFlags("nftbridge endpoint rm", "NAME", "Detach an endpoint: remove its ports and elements, then its veth pair.", a)
	pos, err := f.parse(args, 1, 1)
	if err != nil {
		return err
	}
	eng, err := a.engine()
	if err != nil {
		return err
	}
	if err := eng.RemoveEndpoint(pos[0]); err != nil {
		return err
	}
	a.log.Info("endpoint removed", "endpoint", pos[0])
	return nil
}
