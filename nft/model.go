// Package nft models nftbridge's private nftables table as plain values,
// compiles the desired bridge state into that model (Compile), prints it in
// nft syntax (Render), walks packets through it (Trace) and programs it into
// the kernel over netlink (Applier).
//
// The chains and rules are static: everything that grows with networks,
// endpoints or published ports is an element of a set or map.
package nft

import (
	"fmt"
	"net/netip"
)

// Fixed names of everything nftbridge programs. They are the operator's
// vocabulary in `nft list ruleset`, so they never change lightly.
const (
	// TableName is our private table, in the ip family.
	TableName = "nftbridge"

	// ChainUser is the administrator's hook: created empty, never flushed.
	ChainUser           = "user"
	ChainNATPrerouting  = "nat_prerouting"
	ChainNATOutput      = "nat_output"
	ChainForward        = "forward"
	ChainBridgeOut      = "bridge_out"   // new traffic from a bridge
	ChainInternalOut    = "internal_out" // new traffic from an internal network's bridge
	ChainCrossBridge    = "cross_bridge" // new traffic from a bridge to a bridge
	ChainBridgeIn       = "bridge_in"    // new traffic from outside into a bridge
	ChainICCOff         = "icc_off"      // new traffic within a network with ICC off
	ChainInternalIn     = "internal_in"  // new traffic from outside into an internal network
	ChainInput          = "input"
	ChainNATPostrouting = "nat_postrouting"

	SetBridges       = "bridges"        // every managed bridge
	MapFromBridge    = "from_bridge"    // bridge : jump bridge_out | jump internal_out
	MapToBridge      = "to_bridge"      // bridge : jump bridge_in | jump internal_in
	MapICC           = "icc"            // bridge . bridge : accept | jump icc_off
	SetInternal      = "internal"       // bridges of internal networks
	SetMasqSubnets   = "masq_subnets"   // subnets that are masqueraded on the way out
	SetEndpointHomes = "endpoint_homes" // container address . its bridge
	SetPublished     = "published"      // container address . proto . container port
	MapPortDNAT      = "port_dnat"      // proto . host port : container address . port (ports on every host address)
	MapPortDNATIP    = "port_dnat_ip"   // proto . host address . host port : container address . port
)

// Rule comments: short upper-case tags that tell an operator what a rule is for.
const (
	TagUserHook      = "USER-HOOK"
	TagLoopbackSpoof = "LOOPBACK-SPOOF"
	TagLoopbackInput = "LOOPBACK-INPUT"
	TagDNAT          = "DNAT"
	TagDNATIP        = "DNAT-IP"
	TagEstablished   = "ESTABLISHED"
	TagConfirmed     = "CONFIRMED"
	TagFromBridge    = "FROM-BRIDGE"
	TagToBridge      = "TO-BRIDGE"
	TagCrossBridge   = "CROSS-BRIDGE"
	TagPublished     = "PUBLISHED"
	TagIsolation     = "ISOLATION"
	TagICC           = "ICC"
	TagICCOff        = "ICC-OFF"
	TagInternalOut   = "INTERNAL-OUT"
	TagInternalIn    = "INTERNAL-IN"
	TagOutbound      = "OUTBOUND"
	TagInbound       = "INBOUND-DROP"
	TagHairpin       = "HAIRPIN"
	TagLoopbackMasq  = "LOOPBACK-MASQ"
	TagMasquerade    = "MASQUERADE"
)

// Ruleset is the whole of our table.
type Ruleset struct {
	Table  string
	Sets   []*Set
	Chains []*Chain
}

// Set returns the named set or map, or nil.
func (r *Ruleset) Set(name string) *Set {
	for _, s := range r.Sets {
		if s.Name == name {
			return s
		}
	}
	return nil
}

// Chain returns the named chain, or nil.
func (r *Ruleset) Chain(name string) *Chain {
	for _, c := range r.Chains {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// RuleCount is the number of rules in all chains.
func (r *Ruleset) RuleCount() int {
	n := 0
	for _, c := range r.Chains {
		n += len(c.Rules)
	}
	return n
}

// ElementCount is the number of elements in all sets and maps.
func (r *Ruleset) ElementCount() int {
	n := 0
	for _, s := range r.Sets {
		n += len(s.Elements)
	}
	return n
}

// Datatype is the type of one field of a set key or map value.
type Datatype int

// The datatypes nftbridge uses.
const (
	TypeIfname Datatype = iota + 1
	TypeIPv4Addr
	TypeInetProto
	TypeInetService
	TypeVerdict
)

// Name is the datatype's nft name.
func (t Datatype) Name() string {
	switch t {
	case TypeIfname:
		return "ifname"
	case TypeIPv4Addr:
		return "ipv4_addr"
	case TypeInetProto:
		return "inet_proto"
	case TypeInetService:
		return "inet_service"
	case TypeVerdict:
		return "verdict"
	}
	return fmt.Sprintf("datatype(%d)", int(t))
}

// Len is the datatype's length in bytes (before padding in concatenations).
func (t Datatype) Len() int {
	switch t {
	case TypeIfname:
		return 16
	case TypeIPv4Addr:
		return 4
	case TypeInetProto:
		return 1
	case TypeInetService:
		return 2
	}
	return 0
}

// Set is a named set, map (Data set) or verdict map (Data = [TypeVerdict]).
type Set struct {
	Name     string
	Key      []Datatype
	Data     []Datatype // nil for a plain set
	Interval bool       // elements may be ranges (prefixes)
	// Size, when set, is the most elements the set can hold. The kernel
	// then keeps it in a hash table of fixed size instead of one it grows
	// as elements come, which cost a restore a fifth of its kernel time.
	Size     uint32
	Elements []Element
}

// IsMap reports whether the set maps keys to data.
func (s *Set) IsMap() bool { return len(s.Data) > 0 }

// IsVerdictMap reports whether the set maps keys to verdicts.
func (s *Set) IsVerdictMap() bool { return len(s.Data) == 1 && s.Data[0] == TypeVerdict }

// Element is one set or map element. Key has one Value per key field; Data one
// per data field (maps), or Verdict (verdict maps).
type Element struct {
	Key     []Value
	Data    []Value
	Verdict *Verdict
}

// Value is one field of an element. Which member is meaningful follows from
// the field's Datatype: Ifname; Addr (or Prefix, in interval sets); Num for
// protocols and ports.
type Value struct {
	Ifname string
	Addr   netip.Addr
	Prefix netip.Prefix
	Num    uint16
}

// IfnameValue, AddrValue, PrefixValue, ProtoValue and PortValue build Values.
func IfnameValue(name string) Value    { return Value{Ifname: name} }
func AddrValue(a netip.Addr) Value     { return Value{Addr: a} }
func PrefixValue(p netip.Prefix) Value { return Value{Prefix: p.Masked()} }
func ProtoValue(proto uint8) Value     { return Value{Num: uint16(proto)} }
func PortValue(port uint16) Value      { return Value{Num: port} }

// Chain is a base chain (Hook set) or a regular chain.
type Chain struct {
	Name string
	Hook *Hook
	// UserOwned chains are created if missing and never flushed or
	// rewritten: their rules belong to the administrator.
	UserOwned bool
	Rules     []Rule
}

// Hook attaches a base chain to a netfilter hook.
type Hook struct {
	Type     string // "filter" or "nat"
	Hook     string // "prerouting", "output", "forward", "postrouting"
	Priority int
}

// Netfilter priorities used by our base chains.
const (
	PriorityRaw    = -300
	PriorityDstNAT = -100
	PriorityFilter = 0
	PrioritySrcNAT = 100
)

// Rule is a list of matches followed by at most one statement and a verdict.
type Rule struct {
	Comment string
	Exprs   []Expr
}

// Expr is one typed expression of a rule: a match, a statement or a verdict.
// The set of implementations is closed: the renderer, tracer and applier each
// handle every one of them and fail loudly on anything else.
type Expr interface{ isExpr() }

// Field is a packet or metadata field that rules can match.
type Field int

// Fields.
const (
	FieldIIFName Field = iota + 1
	FieldOIFName
	FieldIPSaddr
	FieldIPDaddr
	FieldL4Proto
	FieldTHDport
)

// Type is the datatype of the field.
func (f Field) Type() Datatype {
	switch f {
	case FieldIIFName, FieldOIFName:
		return TypeIfname
	case FieldIPSaddr, FieldIPDaddr:
		return TypeIPv4Addr
	case FieldL4Proto:
		return TypeInetProto
	case FieldTHDport:
		return TypeInetService
	}
	return 0
}

// Lookup matches when the concatenation of Key fields is (or, Negate, is not)
// an element of Set.
type Lookup struct {
	Key    []Field
	Set    string
	Negate bool
}

// PrefixMatch matches a field against one IPv4 prefix.
type PrefixMatch struct {
	Field  Field
	Prefix netip.Prefix
}

// ProtoIn matches the layer 4 protocol against a small constant set.
type ProtoIn struct {
	Protos []uint8
}

// CtStateIn matches the conntrack state (any of States).
type CtStateIn struct {
	States []string // "established", "related", "new", "invalid"
}

// CtStatusDNAT matches connections whose destination was translated.
type CtStatusDNAT struct{}

// CtStatusConfirmed matches packets of a connection that conntrack has
// confirmed: one whose first packet passed every hook. A first packet
// never matches.
type CtStatusConfirmed struct{}

// FibDaddrLocal matches packets addressed to one of the host's own addresses.
type FibDaddrLocal struct{}

// VerdictMap looks the key up in a verdict map and applies the verdict found.
type VerdictMap struct {
	Key []Field
	Map string
}

// DNATMap rewrites the destination address and port to the data found by
// looking the key up in Map.
type DNATMap struct {
	Key []Field
	Map string
}

// Masquerade rewrites the source to the outgoing interface's address.
type Masquerade struct{}

// Verdict ends rule evaluation: accept, drop, return, or jump to Chain.
type Verdict struct {
	Kind  VerdictKind
	Chain string // jump target
}

// VerdictKind is the kind of a verdict.
type VerdictKind int

// Verdict kinds.
const (
	Accept VerdictKind = iota + 1
	Drop
	Return
	Jump
)

func (Lookup) isExpr()            {}
func (PrefixMatch) isExpr()       {}
func (ProtoIn) isExpr()           {}
func (CtStateIn) isExpr()         {}
func (CtStatusDNAT) isExpr()      {}
func (CtStatusConfirmed) isExpr() {}
func (FibDaddrLocal) isExpr()     {}
func (VerdictMap) isExpr()        {}
func (DNATMap) isExpr()           {}
func (Masquerade) isExpr()        {}
func (Verdict) isExpr()           {}
