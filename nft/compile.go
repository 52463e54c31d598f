package nft

import (
	"fmt"
	"net/netip"
	"sync"
)

// Desired is the bridge state the ruleset must express. It is built by the
// bridge package from its store; nft knows nothing of names or namespaces.
type Desired struct {
	Networks  []Network
	Endpoints []Endpoint
	Ports     []Port
}

// Network is one managed bridge network.
type Network struct {
	Bridge     string
	Subnet     netip.Prefix
	ICC        bool // containers on this bridge may talk to each other
	Internal   bool // nothing in or out except between members
	Masquerade bool // outbound traffic leaves with the host's address
}

// Endpoint is one container address on a bridge.
type Endpoint struct {
	Bridge string
	Addr   netip.Addr
}

// Port is one published port: traffic to HostIP:HostPort (HostIP 0.0.0.0 =
// any host address) is translated to Addr:ContainerPort.
type Port struct {
	Proto         uint8 // 6 tcp, 17 udp
	HostIP        netip.Addr
	HostPort      uint16
	Addr          netip.Addr
	ContainerPort uint16
}

// Protocol numbers.
const (
	ProtoTCP uint8 = 6
	ProtoUDP uint8 = 17
)

// loopbackNet is 127.0.0.0/8: never routable onto a bridge except by our own
// output DNAT for ports published on a loopback address.
var loopbackNet = netip.MustParsePrefix("127.0.0.0/8")

// Compile turns the desired state into our table. It is pure: the same input
// always gives the same ruleset, with no I/O. Elements keep the order of the
// input (Render prints them sorted, as nft lists them): sorting 34,000 of
// them was half of Compile, and neither the kernel nor Update needs it.
func Compile(d Desired) (*Ruleset, error) {
	if err := d.validate(); err != nil {
		return nil, err
	}
	return &Ruleset{Table: TableName, Sets: compileSets(d), Chains: staticChains()}, nil
}

// Capacity of the sets that grow with containers and published ports.
const (
	MaxEndpoints      = 65536
	MaxPublishedPorts = 131072 // every TCP and UDP port of a host address, and more
)

// validate catches inputs that would give a ruleset with a wrong meaning, or
// one the kernel would refuse for its size.
func (d Desired) validate() error {
	if len(d.Endpoints) > MaxEndpoints {
		return fmt.Errorf("%d endpoints: nftbridge holds at most %d", len(d.Endpoints), MaxEndpoints)
	}
	if len(d.Ports) > MaxPublishedPorts {
		return fmt.Errorf("%d published ports: nftbridge holds at most %d", len(d.Ports), MaxPublishedPorts)
	}
	bridges := map[string]bool{}
	for _, n := range d.Networks {
		if n.Bridge == "" || len(n.Bridge) > 15 {
			return fmt.Errorf("network bridge name %q: must be 1 to 15 characters", n.Bridge)
		}
		if bridges[n.Bridge] {
			return fmt.Errorf("bridge %q appears in two networks", n.Bridge)
		}
		if !n.Subnet.IsValid() || !n.Subnet.Addr().Is4() {
			return fmt.Errorf("network on bridge %q: subnet %v is not an IPv4 prefix", n.Bridge, n.Subnet)
		}
		bridges[n.Bridge] = true
	}
	for _, e := range d.Endpoints {
		if !bridges[e.Bridge] {
			return fmt.Errorf("endpoint %v: unknown bridge %q", e.Addr, e.Bridge)
		}
		if !e.Addr.Is4() {
			return fmt.Errorf("endpoint on bridge %q: address %v is not IPv4", e.Bridge, e.Addr)
		}
	}
	for _, p := range d.Ports {
		if p.Proto != ProtoTCP && p.Proto != ProtoUDP {
			return fmt.Errorf("published port %d: protocol %d is neither tcp nor udp", p.HostPort, p.Proto)
		}
		if !p.Addr.Is4() || (p.HostIP.IsValid() && !p.HostIP.Is4()) {
			return fmt.Errorf("published port %d: host address %v and container address %v must be IPv4",
				p.HostPort, p.HostIP, p.Addr)
		}
		if p.HostPort == 0 || p.ContainerPort == 0 {
			return fmt.Errorf("published port %d->%d: ports must be non-zero", p.HostPort, p.ContainerPort)
		}
	}
	return nil
}

// setDefinitions lists every set and map, empty. The order is the order they
// are created and printed in.
func setDefinitions() []*Set {
	ifname, addr := TypeIfname, TypeIPv4Addr
	return []*Set{
		{Name: SetBridges, Key: []Datatype{ifname}},
		// The forward chain dispatches a new connection on its input, then
		// its output interface, each one lookup in a verdict map: a packet
		// walks only the rules that can decide it.
		{Name: MapFromBridge, Key: []Datatype{ifname}, Data: []Datatype{TypeVerdict}},
		{Name: MapToBridge, Key: []Datatype{ifname}, Data: []Datatype{TypeVerdict}},
		{Name: MapICC, Key: []Datatype{ifname, ifname}, Data: []Datatype{TypeVerdict}},
		{Name: SetInternal, Key: []Datatype{ifname}},
		{Name: SetMasqSubnets, Key: []Datatype{addr}, Interval: true},
		// The sets that grow with containers and ports have a fixed size:
		// the kernel's growing hash table rehashed itself all through a
		// restore (57 ms of kernel time at 10,000 ports, 37 ms sized). A
		// fixed table costs its buckets up front (1 MiB per 65,536) and
		// refuses elements past its size; MaxEndpoints and
		// MaxPublishedPorts say so before the kernel has to.
		{Name: SetEndpointHomes, Key: []Datatype{addr, ifname}, Size: MaxEndpoints},
		{Name: SetPublished, Key: []Datatype{addr, TypeInetProto, TypeInetService}, Size: MaxPublishedPorts},
		// Two hash maps rather than one interval map with 0.0.0.0/0 for
		// "every address": the kernel keeps a concatenated interval map
		// in its pipapo backend, which rebuilds on every change (7-13 ms
		// per element add at 10,000 ports, 0.8 s to load) where a hash
		// map stays O(1). Overlapping bindings are refused before we get
		// here, so at most one of the two maps matches a packet.
		{Name: MapPortDNATIP, Key: []Datatype{TypeInetProto, addr, TypeInetService},
			Data: []Datatype{addr, TypeInetService}, Size: MaxPublishedPorts},
		{Name: MapPortDNAT, Key: []Datatype{TypeInetProto, TypeInetService},
			Data: []Datatype{addr, TypeInetService}, Size: MaxPublishedPorts},
	}
}

func compileSets(d Desired) []*Set {
	sets := setDefinitions()
	byName := map[string]*Set{}
	for _, s := range sets {
		byName[s.Name] = s
	}
	// Networks, endpoints and ports fill different sets: on a restore
	// (34,000 elements) they are compiled side by side.
	parts := []func(){
		func() { compileNetworks(d.Networks, byName) },
		func() { compileEndpoints(d.Endpoints, byName[SetEndpointHomes]) },
		func() { compilePorts(d.Ports, byName[SetPublished], byName[MapPortDNAT], byName[MapPortDNATIP]) },
	}
	if len(d.Networks)+len(d.Endpoints)+len(d.Ports) < parallelCompileMin {
		for _, part := range parts {
			part()
		}
		return sets
	}
	var wg sync.WaitGroup
	for _, part := range parts {
		wg.Go(part)
	}
	wg.Wait()
	return sets
}

// parallelCompileMin is the input size from which compileSets uses
// goroutines: below it (a CLI call's few records) they cost more than
// they save.
const parallelCompileMin = 4096

// compileNetworks, compileEndpoints and compilePorts make room for every
// element up front, and the values of all elements from one source share
// one array: growing 34,000-element slices a doubling at a time was a fifth
// of Compile, and a small allocation per element key most of the rest.
// Elements never change their keys in place, so they may share values.
func compileNetworks(networks []Network, byName map[string]*Set) {
	for _, name := range []string{SetBridges, MapFromBridge, MapToBridge, MapICC, SetMasqSubnets} {
		byName[name].Elements = make([]Element, 0, len(networks))
	}
	add := func(set string, e Element) { byName[set].Elements = append(byName[set].Elements, e) }
	// Per network: its bridge name (bridges, from_bridge, to_bridge and
	// internal share it), the ICC key's two fields and the subnet.
	const perNetwork = 4
	values := make([]Value, perNetwork*len(networks))
	verdicts := make([]Verdict, 3*len(networks))
	for i, n := range networks {
		v := values[perNetwork*i : perNetwork*(i+1) : perNetwork*(i+1)]
		v[0], v[1], v[2], v[3] = IfnameValue(n.Bridge), IfnameValue(n.Bridge), IfnameValue(n.Bridge), PrefixValue(n.Subnet)
		br, iccKey, subnet := v[0:1:1], v[1:3:3], v[3:4:4]
		out, into, icc := &verdicts[3*i], &verdicts[3*i+1], &verdicts[3*i+2]
		*out, *into, *icc = Verdict{Kind: Jump, Chain: ChainBridgeOut}, Verdict{Kind: Jump, Chain: ChainBridgeIn}, accept
		if n.Internal {
			out.Chain, into.Chain = ChainInternalOut, ChainInternalIn
			add(SetInternal, Element{Key: br})
		}
		if !n.ICC {
			*icc = Verdict{Kind: Jump, Chain: ChainICCOff}
		}
		add(SetBridges, Element{Key: br})
		add(MapFromBridge, Element{Key: br, Verdict: out})
		add(MapToBridge, Element{Key: br, Verdict: into})
		add(MapICC, Element{Key: iccKey, Verdict: icc})
		if n.Masquerade && !n.Internal {
			add(SetMasqSubnets, Element{Key: subnet})
		}
	}
}

func compileEndpoints(endpoints []Endpoint, homes *Set) {
	homes.Elements = make([]Element, len(endpoints))
	values := make([]Value, 2*len(endpoints))
	for i, e := range endpoints {
		key := values[2*i : 2*i+2 : 2*i+2]
		key[0], key[1] = AddrValue(e.Addr), IfnameValue(e.Bridge)
		homes.Elements[i] = Element{Key: key}
	}
}

func compilePorts(ports []Port, published, dnat, dnatIP *Set) {
	published.Elements = make([]Element, 0, len(ports))
	dnat.Elements = make([]Element, 0, len(ports))
	// Per port: the published key (3 fields), the DNAT key (2 or 3) and
	// the DNAT target (2).
	const perPort = 8
	values := make([]Value, perPort*len(ports))
	// Two ports of one container may share a container port (8080:80 and
	// 8081:80): the published set holds that element once.
	type containerPort struct {
		addr  netip.Addr
		proto uint8
		port  uint16
	}
	seen := make(map[containerPort]bool, len(ports))
	for i, p := range ports {
		v := values[perPort*i : perPort*(i+1) : perPort*(i+1)]
		if cp := (containerPort{p.Addr, p.Proto, p.ContainerPort}); !seen[cp] {
			seen[cp] = true
			v[0], v[1], v[2] = AddrValue(p.Addr), ProtoValue(p.Proto), PortValue(p.ContainerPort)
			published.Elements = append(published.Elements, Element{Key: v[0:3:3]})
		}
		v[3], v[4] = AddrValue(p.Addr), PortValue(p.ContainerPort)
		target := v[3:5:5]
		if !p.HostIP.IsValid() || p.HostIP.IsUnspecified() {
			v[5], v[6] = ProtoValue(p.Proto), PortValue(p.HostPort)
			dnat.Elements = append(dnat.Elements, Element{Key: v[5:7:7], Data: target})
		} else {
			v[5], v[6], v[7] = ProtoValue(p.Proto), AddrValue(p.HostIP), PortValue(p.HostPort)
			dnatIP.Elements = append(dnatIP.Elements, Element{Key: v[5:8:8], Data: target})
		}
	}
}

// staticChains is every chain and rule. Nothing here depends on the desired
// state: that is what keeps the rule count constant.
func staticChains() []*Chain {
	return []*Chain{
		{Name: ChainUser, UserOwned: true},
		natChain(ChainNATPrerouting, "prerouting"),
		natChain(ChainNATOutput, "output"),
		forwardChain(),
		bridgeOutChain(),
		internalOutChain(),
		crossBridgeChain(),
		bridgeInChain(),
		iccOffChain(),
		internalInChain(),
		inputChain(),
		natPostroutingChain(),
	}
}

var (
	accept = Verdict{Kind: Accept}
	drop   = Verdict{Kind: Drop}
)

func in(f Field, set string) Lookup    { return Lookup{Key: []Field{f}, Set: set} }
func notIn(f Field, set string) Lookup { return Lookup{Key: []Field{f}, Set: set, Negate: true} }
func jumpTo(chain string) *Verdict     { return &Verdict{Kind: Jump, Chain: chain} }

// inputChain guards the host's loopback services. route_localnet is on
// for our bridges (loopback-bound ports need it), so a packet from a
// container to 127/8 is delivered locally. LOOPBACK-SPOOF in the NAT chain
// drops such connections at their first packet; this catches what NAT
// chains never see (invalid and untracked packets). It sits on the input
// hook, which only packets for the host traverse: forwarded traffic never
// pays for it. Conntrack replies (established, related) pass: those of a
// LOOPBACK-MASQ connection arrive from a bridge de-NATed to 127.0.0.1.
func inputChain() *Chain {
	return &Chain{
		Name: ChainInput,
		Hook: &Hook{Type: "filter", Hook: "input", Priority: PriorityFilter},
		Rules: []Rule{
			{Comment: TagLoopbackInput, Exprs: []Expr{PrefixMatch{Field: FieldIPDaddr, Prefix: loopbackNet},
				in(FieldIIFName, SetBridges), CtStateIn{States: []string{"invalid", "new", "untracked"}}, drop}},
		},
	}
}

// tcpOrUDP is what nft requires before a map of transport ports.
func tcpOrUDP() ProtoIn { return ProtoIn{Protos: []uint8{ProtoTCP, ProtoUDP}} }

func natChain(name, hook string) *Chain {
	var rules []Rule
	if hook == "prerouting" {
		// Nothing from the network may open a connection to 127/8.
		// Routing would drop it as martian (or, on our bridges with
		// route_localnet, deliver it to the host's loopback services),
		// but only after this hook: DNAT-IP would first translate it to a
		// port published on 127.0.0.1 (CVE-2020-8558). The host's own
		// loopback traffic never gets here: its NAT was settled in output.
		// A drop in a NAT chain is final and the connection is never
		// confirmed, so every packet of it meets this rule.
		rules = append(rules, Rule{Comment: TagLoopbackSpoof,
			Exprs: []Expr{PrefixMatch{Field: FieldIPDaddr, Prefix: loopbackNet}, drop}})
	}
	return &Chain{
		Name: name,
		Hook: &Hook{Type: "nat", Hook: hook, Priority: PriorityDstNAT},
		Rules: append(rules,
			// A lookup that misses ends the rule, not the chain: a port
			// bound to one host address, then a port bound to all.
			Rule{Comment: TagDNATIP, Exprs: []Expr{FibDaddrLocal{}, tcpOrUDP(),
				DNATMap{Key: []Field{FieldL4Proto, FieldIPDaddr, FieldTHDport}, Map: MapPortDNATIP}}},
			Rule{Comment: TagDNAT, Exprs: []Expr{FibDaddrLocal{}, tcpOrUDP(),
				DNATMap{Key: []Field{FieldL4Proto, FieldTHDport}, Map: MapPortDNAT}}}),
	}
}

// forwardChain decides forwarded traffic on our bridges. Every packet of an
// accepted connection leaves at ESTABLISHED or CONFIRMED; a connection's
// first packet is dispatched on its interfaces by two verdict-map lookups,
// so it walks only the few rules that can decide it, whatever N and P. Traffic on neither side of a bridge of ours
// is not ours: it falls through to the policy, accept.
//
// The jump targets below always end in a verdict: none returns.
func forwardChain() *Chain {
	return &Chain{
		Name: ChainForward,
		Hook: &Hook{Type: "filter", Hook: "forward", Priority: PriorityFilter},
		Rules: []Rule{
			// The admin's rules come first, before any of ours (DOCKER-USER).
			{Comment: TagUserHook, Exprs: []Expr{Verdict{Kind: Jump, Chain: ChainUser}}},
			// Every packet of an accepted connection leaves here, whatever
			// its interfaces: a connection exists only because a rule (ours
			// or the admin's) let its first packet through, and an accept
			// ends only our chain.
			{Comment: TagEstablished, Exprs: []Expr{CtStateIn{States: []string{"established", "related"}}, accept}},
			// So does every later packet of a connection that has seen no
			// reply yet (one-way UDP stays "new" in conntrack on every
			// packet). Conntrack confirms a connection only once its first
			// packet has passed every hook, so that packet got this chain's
			// full verdict, and our verdicts depend on nothing a later
			// packet could change: its addresses, ports, interfaces and
			// DNAT are the connection's. The same holds for ESTABLISHED;
			// when nftbridge takes something away (a port, an endpoint) it
			// deletes the conntrack entries it allowed, so neither rule
			// keeps a flow alive that the rules below would now drop. The
			// admin's rules above still see every packet.
			{Comment: TagConfirmed, Exprs: []Expr{CtStatusConfirmed{}, accept}},
			// From a bridge: bridge_out, or internal_out for an internal
			// network.
			{Comment: TagFromBridge, Exprs: []Expr{VerdictMap{Key: []Field{FieldIIFName}, Map: MapFromBridge}}},
			// From elsewhere into a bridge: bridge_in, or internal_in.
			{Comment: TagToBridge, Exprs: []Expr{VerdictMap{Key: []Field{FieldOIFName}, Map: MapToBridge}}},
		},
	}
}

// iccRule looks up bridge . bridge, present only for the same bridge: accept,
// or icc_off. A different bridge misses and goes on.
func iccRule() Rule {
	return Rule{Comment: TagICC, Exprs: []Expr{VerdictMap{Key: []Field{FieldIIFName, FieldOIFName}, Map: MapICC}}}
}

// publishedRule accepts a connection DNATed to a published container port.
// Only through DNAT: routed straight to a container's address, the same port
// is new traffic that the chain's drop stops (Docker 28's "DROP DIRECT
// ACCESS", here without a raw-priority chain that every packet, established
// or not, would have to walk).
func publishedRule() Rule {
	return Rule{Comment: TagPublished, Exprs: []Expr{CtStatusDNAT{},
		Lookup{Key: []Field{FieldIPDaddr, FieldL4Proto, FieldTHDport}, Set: SetPublished}, accept}}
}

// bridgeOutChain: new traffic from a bridge. Out of the host it is accepted;
// to a bridge it is a question for cross_bridge.
func bridgeOutChain() *Chain {
	return &Chain{Name: ChainBridgeOut, Rules: []Rule{
		{Comment: TagCrossBridge, Exprs: []Expr{in(FieldOIFName, SetBridges), Verdict{Kind: Jump, Chain: ChainCrossBridge}}},
		{Comment: TagOutbound, Exprs: []Expr{accept}},
	}}
}

// internalOutChain: new traffic from an internal network's bridge. Like
// Docker's isolation stage, nothing leaves the bridge, not even for a
// published port of another network.
func internalOutChain() *Chain {
	return &Chain{Name: ChainInternalOut, Rules: []Rule{
		iccRule(),
		{Comment: TagInternalOut, Exprs: []Expr{drop}},
	}}
}

// crossBridgeChain: new traffic from a (not internal) bridge to a bridge.
// A published port is reachable from every network through a host address
// (hairpin across networks); anything else between two bridges is dropped.
func crossBridgeChain() *Chain {
	return &Chain{Name: ChainCrossBridge, Rules: []Rule{
		iccRule(),
		{Comment: TagInternalIn, Exprs: []Expr{in(FieldOIFName, SetInternal), drop}},
		publishedRule(),
		{Comment: TagIsolation, Exprs: []Expr{drop}},
	}}
}

// bridgeInChain: new traffic from outside into a bridge. Docker 28+: nothing
// enters but a published port through DNAT.
func bridgeInChain() *Chain {
	return &Chain{Name: ChainBridgeIn, Rules: []Rule{
		publishedRule(),
		{Comment: TagInbound, Exprs: []Expr{drop}},
	}}
}

// iccOffChain: new traffic between members of a network with ICC off. Only
// a member's published port, reached through a host address, is let in.
func iccOffChain() *Chain {
	return &Chain{Name: ChainICCOff, Rules: []Rule{
		publishedRule(),
		{Comment: TagICCOff, Exprs: []Expr{drop}},
	}}
}

// internalInChain: new traffic from outside into an internal network.
func internalInChain() *Chain {
	return &Chain{Name: ChainInternalIn, Rules: []Rule{
		{Comment: TagInternalIn, Exprs: []Expr{drop}},
	}}
}

func natPostroutingChain() *Chain {
	return &Chain{
		Name: ChainNATPostrouting,
		Hook: &Hook{Type: "nat", Hook: "postrouting", Priority: PrioritySrcNAT},
		Rules: []Rule{
			// A container reaching a published port on its own bridge: the
			// reply would bypass the host's conntrack without this. No
			// iifname here: bridged packets carry none in postrouting.
			{Comment: TagHairpin, Exprs: []Expr{CtStatusDNAT{},
				Lookup{Key: []Field{FieldIPSaddr, FieldOIFName}, Set: SetEndpointHomes}, Masquerade{}}},
			// The host reaching a port published on 127.0.0.1.
			{Comment: TagLoopbackMasq, Exprs: []Expr{PrefixMatch{Field: FieldIPSaddr, Prefix: loopbackNet},
				in(FieldOIFName, SetBridges), Masquerade{}}},
			{Comment: TagMasquerade, Exprs: []Expr{in(FieldIPSaddr, SetMasqSubnets),
				notIn(FieldOIFName, SetBridges), Masquerade{}}},
		},
	}
}
