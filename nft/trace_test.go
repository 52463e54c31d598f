package nft

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
)

// The world the trace cases walk through: five networks, eight containers,
// four published ports, and a host whose outside address 10.99.0.1 sits on
// "uplink".
const (
	hostIP  = "10.99.0.1"
	outside = "203.0.113.7" // a client somewhere beyond uplink
	a1, a2  = "172.18.0.2", "172.18.0.3"
	b1      = "172.19.0.2"
	c1, c2  = "172.20.0.2", "172.20.0.3"
	i1, i2  = "172.21.0.2", "172.21.0.3"
	m1      = "172.22.0.2"
)

func traceDesired() Desired {
	mp, ma := netip.MustParsePrefix, netip.MustParseAddr
	return Desired{
		Networks: []Network{
			{Bridge: "br-a", Subnet: mp("172.18.0.0/16"), ICC: true, Masquerade: true},
			{Bridge: "br-b", Subnet: mp("172.19.0.0/16"), ICC: true, Masquerade: true},
			{Bridge: "br-c", Subnet: mp("172.20.0.0/16"), ICC: false, Masquerade: true},
			{Bridge: "br-i", Subnet: mp("172.21.0.0/16"), ICC: true, Internal: true, Masquerade: true},
			{Bridge: "br-m", Subnet: mp("172.22.0.0/16"), ICC: true, Masquerade: false},
		},
		Endpoints: []Endpoint{
			{Bridge: "br-a", Addr: ma(a1)}, {Bridge: "br-a", Addr: ma(a2)},
			{Bridge: "br-b", Addr: ma(b1)},
			{Bridge: "br-c", Addr: ma(c1)}, {Bridge: "br-c", Addr: ma(c2)},
			{Bridge: "br-i", Addr: ma(i1)}, {Bridge: "br-i", Addr: ma(i2)},
			{Bridge: "br-m", Addr: ma(m1)},
		},
		Ports: []Port{
			{Proto: ProtoTCP, HostIP: ma("0.0.0.0"), HostPort: 8080, Addr: ma(a1), ContainerPort: 80},
			{Proto: ProtoUDP, HostIP: ma("0.0.0.0"), HostPort: 5353, Addr: ma(a1), ContainerPort: 53},
			{Proto: ProtoTCP, HostIP: ma("127.0.0.1"), HostPort: 9090, Addr: ma(a1), ContainerPort: 90},
			{Proto: ProtoTCP, HostIP: ma(hostIP), HostPort: 7070, Addr: ma(b1), ContainerPort: 70},
			{Proto: ProtoTCP, HostIP: ma("0.0.0.0"), HostPort: 6060, Addr: ma(c1), ContainerPort: 60},
		},
	}
}

func traceEnv() Env {
	mp, ma := netip.MustParsePrefix, netip.MustParseAddr
	return Env{
		LocalAddrs: []netip.Addr{ma(hostIP), ma("172.18.0.1"), ma("172.19.0.1"),
			ma("172.20.0.1"), ma("172.21.0.1"), ma("172.22.0.1")},
		Routes: map[string]netip.Prefix{
			"uplink": mp("10.99.0.0/24"),
			"br-a":   mp("172.18.0.0/16"), "br-b": mp("172.19.0.0/16"), "br-c": mp("172.20.0.0/16"),
			"br-i": mp("172.21.0.0/16"), "br-m": mp("172.22.0.0/16"),
		},
		DefaultIF: "uplink",
	}
}

func traceRuleset(t *testing.T) *Ruleset {
	t.Helper()
	rs, err := Compile(traceDesired())
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	return rs
}

// pkt builds a new connection's first packet: src is an address (source
// port 40000), dst an address:port.
func pkt(proto uint8, iif, src, dst string) Packet {
	to := netip.MustParseAddrPort(dst)
	return Packet{IIF: iif, Saddr: netip.MustParseAddr(src), Daddr: to.Addr(),
		Proto: proto, Sport: 40000, Dport: to.Port()}
}

func tcp(iif, src, dst string) Packet { return pkt(ProtoTCP, iif, src, dst) }
func udp(iif, src, dst string) Packet { return pkt(ProtoUDP, iif, src, dst) }

// established turns p into a later packet of its connection; natDst is the
// destination conntrack restores ("" for none), dnat its ct status dnat.
func established(p Packet, natDst string, dnat bool) Packet {
	p.CtState, p.CtDNAT = "established", dnat
	if natDst != "" {
		p.CtNATDst = netip.MustParseAddrPort(natDst)
	}
	return p
}

// unreplied is a later packet of a connection that has seen no reply yet.
func unreplied(p Packet, natDst string, dnat bool) Packet {
	p = established(p, natDst, dnat)
	p.CtState = "unreplied"
	return p
}

// userRule is an administrator's rule in the user chain.
func userRule(comment string, exprs ...Expr) Rule { return Rule{Comment: comment, Exprs: exprs} }

func saddrIn(prefix string) PrefixMatch {
	return PrefixMatch{Field: FieldIPSaddr, Prefix: netip.MustParsePrefix(prefix)}
}

func daddrIn(prefix string) PrefixMatch {
	return PrefixMatch{Field: FieldIPDaddr, Prefix: netip.MustParsePrefix(prefix)}
}

// want is what a trace case expects. tags are the tags of every rule that
// matched, in order, leaving out the USER-HOOK jump that every forwarded
// packet takes.
type want struct {
	verdict string
	oif     string
	dnat    string // "" when no DNAT
	masq    bool
	by      string // Result.DecidedBy
	tags    []string
}

type traceCase struct {
	name string
	user []Rule // appended to the user chain
	pkt  Packet
	want want
}

func tags(t ...string) []string { return t }

func TestTrace(t *testing.T) {
	for _, tc := range traceCases() {
		t.Run(tc.name, func(t *testing.T) {
			rs := traceRuleset(t)
			user := rs.Chain(ChainUser)
			user.Rules = append(user.Rules, tc.user...)
			res, err := Trace(rs, traceEnv(), tc.pkt)
			if err != nil {
				t.Fatalf("Trace: %v", err)
			}
			checkResult(t, res, tc.want)
		})
	}
}

func checkResult(t *testing.T, res Result, w want) {
	t.Helper()
	dnat := ""
	if res.DNAT != nil {
		dnat = res.DNAT.String()
	}
	got := want{verdict: res.Verdict, oif: res.OIF, dnat: dnat, masq: res.Masquerade, by: res.DecidedBy,
		tags: slices.DeleteFunc(slices.Clone(res.Rules), func(s string) bool { return s == TagUserHook })}
	if got.verdict != w.verdict || got.oif != w.oif || got.dnat != w.dnat || got.masq != w.masq ||
		got.by != w.by || !slices.Equal(got.tags, w.tags) {
		t.Errorf("got  %+v\nwant %+v\ntrail:\n\t%s", got, w, strings.Join(res.Trail, "\n\t"))
	}
}

// TestTraceTrail pins the trail of one walk line by line: it is what
// `nftbridge explain` shows an operator.
func TestTraceTrail(t *testing.T) {
	rs := traceRuleset(t)
	res, err := Trace(rs, traceEnv(), tcp("uplink", outside, hostIP+":8080"))
	if err != nil {
		t.Fatal(err)
	}
	rule := func(chain string, i int) string { return RuleString(rs.Chain(chain).Rules[i]) }
	wantTrail := []string{
		"nat_prerouting: DNAT → 172.18.0.2:80 [DNAT] {" + rule(ChainNATPrerouting, 2) + "}",
		"routing: 172.18.0.2 via br-a",
		"forward: jump user [USER-HOOK] {" + rule(ChainForward, 0) + "}",
		"user: no match, return",
		"forward: to_bridge → jump bridge_in [TO-BRIDGE] {" + rule(ChainForward, 4) + "}",
		"bridge_in: accept [PUBLISHED] {" + rule(ChainBridgeIn, 0) + "}",
		"nat_postrouting: no match, policy accept",
	}
	if !slices.Equal(res.Trail, wantTrail) {
		t.Errorf("trail:\n\t%s\nwant:\n\t%s", strings.Join(res.Trail, "\n\t"), strings.Join(wantTrail, "\n\t"))
	}
}

// bogusExpr is an expression the tracer has never heard of.
type bogusExpr struct{}

func (bogusExpr) isExpr() {}

// TestTraceErrors: whatever the tracer cannot evaluate faithfully is an
// error naming it, never a silent pass (kube-proxy's discipline).
func TestTraceErrors(t *testing.T) {
	toHost := tcp("uplink", outside, hostIP+":8080")
	tests := []struct {
		name    string
		user    []Rule
		pkt     Packet
		wantErr string
	}{
		{"unknown expression type", []Rule{userRule("BOGUS", bogusExpr{}, drop)}, toHost, "nft.bogusExpr"},
		{"lookup of a set that does not exist", []Rule{userRule("NOSET", in(FieldIIFName, "no_such_set"), drop)},
			toHost, "unknown set @no_such_set"},
		{"key that does not fit the set", []Rule{userRule("BADKEY", in(FieldIPDaddr, SetBridges), drop)},
			toHost, "does not fit set @bridges"},
		{"verdict map that is not one", []Rule{userRule("BADVMAP",
			VerdictMap{Key: []Field{FieldIIFName}, Map: SetBridges})}, toHost, "not a verdict map"},
		{"jump to a chain that does not exist", []Rule{userRule("NOCHAIN", Verdict{Kind: Jump, Chain: "nowhere"})},
			toHost, `unknown chain "nowhere"`},
		{"jump loop", []Rule{userRule("LOOP", Verdict{Kind: Jump, Chain: ChainUser})}, toHost, "nested deeper"},
		{"unknown conntrack state", []Rule{userRule("BADSTATE", CtStateIn{States: []string{"estabilshed"}}, accept)},
			toHost, `"estabilshed"`},
		{"IPv6 packet", nil, Packet{IIF: "uplink", Saddr: netip.MustParseAddr("2001:db8::1"),
			Daddr: netip.MustParseAddr(hostIP), Proto: ProtoTCP, Dport: 80}, "2001:db8::1"},
		{"protocol not set", nil, Packet{IIF: "uplink", Saddr: netip.MustParseAddr(outside),
			Daddr: netip.MustParseAddr(hostIP), Dport: 80}, "protocol 0"},
		{"misspelt conntrack state", nil, func() Packet { p := toHost; p.CtState = "establised"; return p }(),
			`"establised"`},
		{"new packet claiming conntrack NAT", nil, func() Packet { p := toHost; p.CtDNAT = true; return p }(),
			"existing connection"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rs := traceRuleset(t)
			rs.Chain(ChainUser).Rules = append(rs.Chain(ChainUser).Rules, tc.user...)
			res, err := Trace(rs, traceEnv(), tc.pkt)
			if err == nil {
				t.Fatalf("Trace succeeded with verdict %q, want an error containing %q", res.Verdict, tc.wantErr)
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("error %q does not contain %q", err, tc.wantErr)
			}
		})
	}
}

// TestTraceNoRoute: a destination no route covers, with no default
// interface, is an error rather than a guess.
func TestTraceNoRoute(t *testing.T) {
	env := traceEnv()
	env.DefaultIF = ""
	_, err := Trace(traceRuleset(t), env, tcp("br-a", a1, "198.51.100.1:443"))
	if err == nil || !strings.Contains(err.Error(), "198.51.100.1") {
		t.Fatalf("err = %v, want one naming 198.51.100.1", err)
	}
}

// TestTraceRawSeesNoConntrack: chains before priority -200 run before
// conntrack, so an established packet is "invalid" there and has no ct
// status. An administrator's raw chain gets that right in the tracer too.
func TestTraceRawSeesNoConntrack(t *testing.T) {
	rs := traceRuleset(t)
	rs.Chains = append(rs.Chains, &Chain{Name: "admin_raw", Hook: &Hook{Type: "filter", Hook: "prerouting", Priority: PriorityRaw},
		Rules: []Rule{
			userRule("RAW-ESTABLISHED", CtStateIn{States: []string{"established"}}, Verdict{Kind: Drop}),
			userRule("RAW-DNAT", CtStatusDNAT{}, Verdict{Kind: Drop}),
			userRule("RAW-INVALID", CtStateIn{States: []string{"invalid"}}),
		}})
	res, err := Trace(rs, traceEnv(), established(tcp("uplink", outside, hostIP+":8080"), a1+":80", true))
	if err != nil {
		t.Fatal(err)
	}
	checkResult(t, res, want{verdict: "accept", oif: "br-a", by: TagEstablished,
		tags: tags("RAW-INVALID", TagEstablished)})
}
