package nft

import (
	"cmp"
	"fmt"
	"maps"
	"net/netip"
	"slices"
)

// Packet is what the tracer walks through the ruleset: one IPv4 TCP or UDP
// packet, with the addresses it carries as it arrives (before any NAT).
type Packet struct {
	IIF          string // input interface ("" for locally generated)
	Saddr, Daddr netip.Addr
	Proto        uint8 // ProtoTCP or ProtoUDP
	Sport, Dport uint16
	// CtState is "new" (the default: a connection's first packet),
	// "unreplied" (a later packet of a connection that has seen no reply:
	// conntrack's state is new, but the connection is confirmed),
	// "established", "related", "invalid" or "untracked". NAT chains run
	// for new packets only.
	CtState string
	// CtDNAT is, for a packet of an existing connection, whether that
	// connection was DNATed (ct status dnat). New packets learn it from the
	// walk.
	CtDNAT bool
	// CtNATDst is, for a packet of an existing connection that conntrack
	// translates, the destination conntrack restores at the dstnat hook
	// before routing: the container, for a reply to a masqueraded
	// connection or a later packet of a DNATed one. Port 0 keeps Dport.
	CtNATDst netip.AddrPort
}

// Env describes the host around the table: its own addresses, and which
// interface routes where.
type Env struct {
	// LocalAddrs are the host's addresses (fib daddr type local);
	// 127.0.0.0/8 is always local.
	LocalAddrs []netip.Addr
	// Routes maps an interface (bridge) name to the subnet routed out of it.
	Routes map[string]netip.Prefix
	// DefaultIF takes everything no route in Routes covers, e.g. "uplink".
	DefaultIF string
}

// Result is where a packet ended up and how.
type Result struct {
	Verdict    string          // "accept", "drop", or "local" (delivered to the host, not forwarded)
	OIF        string          // output interface when routed out
	DNAT       *netip.AddrPort // set when DNAT happened in this walk
	Masquerade bool            // set when a masquerade statement ran
	// Trail is one line per chain entered: each rule that matched, with its
	// effect, comment tag and nft text, or what the chain's end meant.
	Trail []string
	// Rules are the comment tags of every rule that matched, in walk order.
	Rules []string
	// DecidedBy is the tag of the rule that decided the verdict: the rule
	// that dropped the packet, or the last filter-chain rule that accepted
	// it. Empty when only chain policies applied.
	DecidedBy string
}

// Verdicts of a Result.
const (
	VerdictAccept = "accept"
	VerdictDrop   = "drop"
	VerdictLocal  = "local"
)

// priorityConntrack is where conntrack attaches a packet to its connection
// in prerouting and output: chains before it see no connection at all.
const priorityConntrack = -200

// Trace walks pkt through rs the way the kernel would and reports the
// verdict, any NAT, and the rules that matched. It needs no kernel.
//
// A forwarded packet (IIF set) passes prerouting, routing (to the host:
// input, then verdict "local"), forward and postrouting. A
// locally generated one passes output, routing and postrouting. NAT chains
// see only a connection's first packet. As with br_netfilter, traffic
// between two containers on one bridge has IIF == OIF == the bridge.
//
// An expression the tracer does not know, a lookup of a set that does not
// exist, or a key that does not fit its set is an error, never a pass.
func Trace(rs *Ruleset, env Env, pkt Packet) (Result, error) {
	if err := pkt.validate(); err != nil {
		return Result{}, err
	}
	if pkt.CtState == "" {
		pkt.CtState = "new"
	}
	t := &tracer{rs: rs, env: env, pkt: pkt}
	var err error
	if pkt.IIF == "" {
		err = t.walkOutput()
	} else {
		err = t.walkForward()
	}
	if err != nil {
		return Result{}, fmt.Errorf("trace %s: %w", pkt, err)
	}
	return t.res, nil
}

// String prints the packet as "tcp uplink 1.2.3.4:5 → 10.99.0.1:8080 new".
func (p Packet) String() string {
	iif := p.IIF
	if iif == "" {
		iif = "local"
	}
	state := cmp.Or(p.CtState, "new")
	return fmt.Sprintf("%s %s %s → %s %s", protoName(p.Proto), iif,
		netip.AddrPortFrom(p.Saddr, p.Sport), netip.AddrPortFrom(p.Daddr, p.Dport), state)
}

func (p Packet) validate() error {
	if !p.Saddr.Is4() || !p.Daddr.Is4() {
		return fmt.Errorf("packet %v → %v: addresses must be IPv4", p.Saddr, p.Daddr)
	}
	if p.Proto != ProtoTCP && p.Proto != ProtoUDP {
		return fmt.Errorf("packet protocol %d: must be tcp (%d) or udp (%d)", p.Proto, ProtoTCP, ProtoUDP)
	}
	switch p.CtState {
	case "", "new":
		if p.CtDNAT || p.CtNATDst.IsValid() {
			return fmt.Errorf("packet %v: CtDNAT and CtNATDst describe an existing connection, not a new one", p.Daddr)
		}
	case "unreplied", "established", "related", "invalid", "untracked":
		// invalid: conntrack refused it (a stray TCP segment); untracked:
		// someone's notrack rule. Neither passes a NAT chain.
	default:
		return fmt.Errorf("packet conntrack state %q: must be new, unreplied, established, related, invalid or untracked", p.CtState)
	}
	if p.CtNATDst.IsValid() && !p.CtNATDst.Addr().Is4() {
		return fmt.Errorf("packet conntrack destination %v: must be IPv4", p.CtNATDst)
	}
	return nil
}

// tracer is one walk: the packet as rewritten so far and what happened.
type tracer struct {
	rs  *Ruleset
	env Env
	pkt Packet
	oif string // set by routing

	hook       string // the netfilter hook being walked
	priority   int    // the priority of the base chain being walked
	dnatted    bool   // DNAT happened in this walk
	ctRestored bool   // CtNATDst has been applied
	chainType  string // "filter" or "nat": the base chain's type
	res        Result
}

func (t *tracer) isNew() bool { return t.pkt.CtState == "new" }

func (t *tracer) walkForward() error {
	if stop, err := t.runHook("prerouting"); stop || err != nil {
		return err
	}
	if t.routeIsLocal() {
		t.res.Trail = append(t.res.Trail, fmt.Sprintf("routing: %v is local: input, not forwarded", t.pkt.Daddr))
		if stop, err := t.runHook("input"); stop || err != nil {
			return err
		}
		t.res.Verdict = VerdictLocal
		return nil
	}
	if err := t.route(); err != nil {
		return err
	}
	if stop, err := t.runHook("forward"); stop || err != nil {
		return err
	}
	return t.finish()
}

func (t *tracer) walkOutput() error {
	if stop, err := t.runHook("output"); stop || err != nil {
		return err
	}
	if t.routeIsLocal() {
		t.res.Verdict = VerdictLocal
		t.res.Trail = append(t.res.Trail, fmt.Sprintf("routing: %v is local: delivered over lo", t.pkt.Daddr))
		return nil
	}
	if err := t.route(); err != nil {
		return err
	}
	return t.finish()
}

// finish runs postrouting; a packet that survives it is accepted.
func (t *tracer) finish() error {
	if stop, err := t.runHook("postrouting"); stop || err != nil {
		return err
	}
	t.res.Verdict = VerdictAccept
	return nil
}

// runHook runs every base chain on hook in priority order. It reports stop
// when the packet was dropped.
func (t *tracer) runHook(hook string) (stop bool, err error) {
	t.hook = hook
	var chains []*Chain
	for _, c := range t.rs.Chains {
		if c.Hook != nil && c.Hook.Hook == hook {
			chains = append(chains, c)
		}
	}
	slices.SortStableFunc(chains, func(a, b *Chain) int { return cmp.Compare(a.Hook.Priority, b.Hook.Priority) })
	for _, c := range chains {
		if c.Hook.Priority >= PriorityDstNAT {
			t.restoreConntrackNAT()
		}
		if c.Hook.Type == "nat" && !t.isNew() {
			t.res.Trail = append(t.res.Trail, c.Name+": skipped (NAT chains see only a connection's first packet)")
			continue
		}
		t.priority, t.chainType = c.Hook.Priority, c.Hook.Type
		v, err := t.evalChain(c, 0)
		if err != nil {
			return false, err
		}
		if v == Drop {
			t.res.Verdict = VerdictDrop
			return true, nil
		}
	}
	t.restoreConntrackNAT()
	return false, nil
}

// restoreConntrackNAT applies an existing connection's translation, which
// conntrack does at the dstnat hook whether or not a NAT chain runs.
func (t *tracer) restoreConntrackNAT() {
	if t.ctRestored || t.isNew() || !t.pkt.CtNATDst.IsValid() || (t.hook != "prerouting" && t.hook != "output") {
		return
	}
	t.ctRestored = true
	t.pkt.Daddr = t.pkt.CtNATDst.Addr()
	if port := t.pkt.CtNATDst.Port(); port != 0 {
		t.pkt.Dport = port
	}
	t.res.Trail = append(t.res.Trail, fmt.Sprintf("conntrack: existing connection, destination restored → %v",
		netip.AddrPortFrom(t.pkt.Daddr, t.pkt.Dport)))
}

// ctVisible reports whether conntrack has attached the packet to its
// connection yet: not in prerouting or output chains before priority -200.
func (t *tracer) ctVisible() bool {
	early := t.hook == "prerouting" || t.hook == "output"
	return !early || t.priority >= priorityConntrack
}

func (t *tracer) isLocal(a netip.Addr) bool {
	return loopbackNet.Contains(a) || slices.Contains(t.env.LocalAddrs, a)
}

func (t *tracer) routeIsLocal() bool { return t.isLocal(t.pkt.Daddr) }

// route picks the output interface: the longest route in Env.Routes that
// covers the destination, else the default interface.
func (t *tracer) route() error {
	best, bestBits := "", -1
	for _, name := range routeNames(t.env.Routes) {
		p := t.env.Routes[name]
		if p.Contains(t.pkt.Daddr) && p.Bits() > bestBits {
			best, bestBits = name, p.Bits()
		}
	}
	if best == "" {
		best = t.env.DefaultIF
	}
	if best == "" {
		return fmt.Errorf("routing: no route to %v and no default interface", t.pkt.Daddr)
	}
	t.oif, t.res.OIF = best, best
	t.res.Trail = append(t.res.Trail, fmt.Sprintf("routing: %v via %s", t.pkt.Daddr, best))
	return nil
}

// routeNames are the interfaces of routes, sorted: ties between routes go
// the same way every time.
func routeNames(routes map[string]netip.Prefix) []string {
	return slices.Sorted(maps.Keys(routes))
}
