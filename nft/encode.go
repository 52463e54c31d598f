package nft

import (
	"fmt"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"golang.org/x/sys/unix"
)

// Registers. Keys are loaded the way nft loads them (checked against
// `nft --debug=netlink -f` of Render's text): the first field at the first
// 32-bit register, every further field in the register right after the
// previous field's padded length.
const (
	regVerdict = unix.NFT_REG_VERDICT // 0: the verdict register
	reg32First = unix.NFT_REG32_00    // 8: first 32-bit data register
	reg32Count = 16                   // NFT_REG32_00 … NFT_REG32_15: 64 bytes
)

// ipsDstNAT is IPS_DST_NAT, the conntrack status bit of a connection whose
// destination was translated (host-endian in the register, like all of
// ct status).
const ipsDstNAT = 1 << 5

// ipsConfirmed is IPS_CONFIRMED: the connection is in conntrack's table,
// which happens once its first packet has passed every hook.
const ipsConfirmed = 1 << 3

// wireRegister is the register number nft puts on the wire for a 32-bit
// register: the 128-bit alias (1–4) when the register starts a 16-byte
// register, the 32-bit number otherwise. The kernel accepts both; matching
// nft keeps `nft --debug=netlink list` of our table identical to nft's own.
func wireRegister(reg32 uint32) uint32 {
	off := reg32 - reg32First
	if off%4 == 0 {
		return unix.NFT_REG_1 + off/4
	}
	return reg32
}

// fieldRegisters is how many 32-bit registers a field of type t occupies.
func fieldRegisters(t Datatype) uint32 { return uint32((t.Len() + 3) / 4) }

// anonSet is a constant set a rule uses (`meta l4proto { tcp, udp }`). It is
// queued right before its rule; lookup gets the set's transaction name and
// ID once the connection has assigned them.
type anonSet struct {
	set    *nftables.Set
	elems  []nftables.SetElement
	lookup *expr.Lookup
}

// encodedRule is a rule ready to queue, with the anonymous sets it needs.
type encodedRule struct {
	rule *nftables.Rule
	anon []anonSet
}

// queue adds the rule (and its anonymous sets first) to the batch.
func (r encodedRule) queue(c *nftables.Conn) error {
	for _, a := range r.anon {
		if err := c.AddSet(a.set, a.elems); err != nil {
			return fmt.Errorf("anonymous set for rule: %w", err)
		}
		a.lookup.SetName, a.lookup.SetID = a.set.Name, a.set.ID
	}
	c.AddRule(r.rule)
	return nil
}

// ruleEncoder turns model rules into netlink expressions. It needs the
// ruleset's sets: a lookup's register layout follows the set's key types.
type ruleEncoder struct {
	table *nftables.Table
	sets  map[string]*Set
}

func newRuleEncoder(table *nftables.Table, rs *Ruleset) *ruleEncoder {
	sets := make(map[string]*Set, len(rs.Sets))
	for _, s := range rs.Sets {
		sets[s.Name] = s
	}
	return &ruleEncoder{table: table, sets: sets}
}

// encodeRule encodes one rule of chain; the comment becomes userdata.
func (e *ruleEncoder) encodeRule(chain *nftables.Chain, r Rule) (encodedRule, error) {
	out := encodedRule{rule: &nftables.Rule{Table: e.table, Chain: chain}}
	for _, x := range r.Exprs {
		exprs, anon, err := e.encodeExpr(x)
		if err != nil {
			return encodedRule{}, fmt.Errorf("chain %s rule %q: %w", chain.Name, RuleString(r), err)
		}
		out.rule.Exprs = append(out.rule.Exprs, exprs...)
		out.anon = append(out.anon, anon...)
	}
	if r.Comment != "" {
		out.rule.UserData = userdata.AppendString(nil, userdata.TypeComment, r.Comment)
	}
	return out, nil
}

// encodeExpr encodes one model expression. Every result register is reg 1
// (the first 32-bit register): one match at a time, as nft does.
func (e *ruleEncoder) encodeExpr(x Expr) ([]expr.Any, []anonSet, error) {
	reg := wireRegister(reg32First)
	switch x := x.(type) {
	case Lookup:
		load, sreg, err := e.loadKey(x.Key, x.Set)
		if err != nil {
			return nil, nil, err
		}
		return append(load, &expr.Lookup{SourceRegister: sreg, SetName: x.Set, Invert: x.Negate}), nil, nil
	case PrefixMatch:
		exprs, err := encodePrefixMatch(x)
		return exprs, nil, err
	case ProtoIn:
		return encodeProtoIn(e.table, x)
	case CtStateIn:
		var mask uint32
		for _, s := range x.States {
			bit := CtStateBit(s)
			if bit == 0 {
				return nil, nil, fmt.Errorf("unknown conntrack state %q", s)
			}
			mask |= bit
		}
		return ctMaskNonZero(expr.CtKeySTATE, mask), nil, nil
	case CtStatusDNAT:
		return ctMaskNonZero(expr.CtKeySTATUS, ipsDstNAT), nil, nil
	case CtStatusConfirmed:
		return ctMaskNonZero(expr.CtKeySTATUS, ipsConfirmed), nil, nil
	case FibDaddrLocal:
		return []expr.Any{
			&expr.Fib{Register: reg, FlagDADDR: true, ResultADDRTYPE: true},
			&expr.Cmp{Op: expr.CmpOpEq, Register: reg, Data: binaryutil.NativeEndian.PutUint32(unix.RTN_LOCAL)},
		}, nil, nil
	case VerdictMap:
		return e.encodeVerdictMap(x)
	case DNATMap:
		return e.encodeDNATMap(x)
	case Masquerade:
		return []expr.Any{&expr.Masq{}}, nil, nil
	case Verdict:
		v, err := encodeVerdict(x)
		if err != nil {
			return nil, nil, err
		}
		return []expr.Any{v}, nil, nil
	}
	return nil, nil, fmt.Errorf("expression %T has no netlink encoding", x)
}

// loadKey loads the fields of a lookup key into consecutive registers and
// returns the loads and the first register. The fields must match the
// set's key types.
func (e *ruleEncoder) loadKey(fields []Field, setName string) ([]expr.Any, uint32, error) {
	s := e.sets[setName]
	if s == nil {
		return nil, 0, fmt.Errorf("lookup in unknown set %q", setName)
	}
	if len(fields) != len(s.Key) {
		return nil, 0, fmt.Errorf("key %s has %d fields, set %q has %d", fieldsString(fields), len(fields), setName, len(s.Key))
	}
	var out []expr.Any
	next := uint32(reg32First)
	for i, f := range fields {
		t := f.Type()
		if t != s.Key[i] {
			return nil, 0, fmt.Errorf("key field %s is %s, set %q wants %s", fieldName(f), t.Name(), setName, s.Key[i].Name())
		}
		reg := wireRegister(next)
		load, err := loadField(f, reg)
		if err != nil {
			return nil, 0, err
		}
		out = append(out, load)
		if s.Interval && len(s.Key) > 1 && t == TypeInetProto {
			// nft converts host-endian fields of a range (pipapo) key to
			// network order. For one byte it is a no-op; we send it anyway
			// so that the kernel holds exactly what nft would have loaded.
			out = append(out, &expr.Byteorder{SourceRegister: reg, DestRegister: reg,
				Op: expr.ByteorderHton, Len: 1, Size: 2})
		}
		next += fieldRegisters(t)
	}
	if next > reg32First+reg32Count {
		return nil, 0, fmt.Errorf("key %s does not fit the registers", fieldsString(fields))
	}
	return out, wireRegister(reg32First), nil
}

// loadField loads one packet or metadata field into reg.
func loadField(f Field, reg uint32) (expr.Any, error) {
	switch f {
	case FieldIIFName:
		return &expr.Meta{Key: expr.MetaKeyIIFNAME, Register: reg}, nil
	case FieldOIFName:
		return &expr.Meta{Key: expr.MetaKeyOIFNAME, Register: reg}, nil
	case FieldL4Proto:
		return &expr.Meta{Key: expr.MetaKeyL4PROTO, Register: reg}, nil
	case FieldIPSaddr, FieldIPDaddr:
		return &expr.Payload{DestRegister: reg, Base: expr.PayloadBaseNetworkHeader, Offset: ipAddrOffset(f), Len: 4}, nil
	case FieldTHDport:
		return &expr.Payload{DestRegister: reg, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2}, nil
	}
	return nil, fmt.Errorf("field %d has no netlink encoding", int(f))
}

// ipAddrOffset is the offset of the source or destination address in the
// IPv4 header.
func ipAddrOffset(f Field) uint32 {
	if f == FieldIPSaddr {
		return 12
	}
	return 16
}

// encodePrefixMatch matches an address against a prefix as nft does: a
// byte-aligned prefix loads and compares only its whole bytes (127.0.0.0/8:
// one byte); any other prefix loads the address and masks it.
func encodePrefixMatch(x PrefixMatch) ([]expr.Any, error) {
	if x.Field != FieldIPSaddr && x.Field != FieldIPDaddr {
		return nil, fmt.Errorf("prefix match on %s: only ip saddr and ip daddr", fieldName(x.Field))
	}
	p := x.Prefix.Masked()
	if !p.IsValid() || !p.Addr().Is4() || p.Bits() == 0 {
		return nil, fmt.Errorf("prefix match %v: need an IPv4 prefix of length 1 to 32", x.Prefix)
	}
	reg, addr, bits := wireRegister(reg32First), p.Addr().As4(), p.Bits()
	load := &expr.Payload{DestRegister: reg, Base: expr.PayloadBaseNetworkHeader, Offset: ipAddrOffset(x.Field), Len: 4}
	if bits%8 == 0 {
		load.Len = uint32(bits / 8)
		return []expr.Any{load, &expr.Cmp{Op: expr.CmpOpEq, Register: reg, Data: addr[:bits/8]}}, nil
	}
	mask := prefixMask(bits)
	return []expr.Any{
		load,
		&expr.Bitwise{SourceRegister: reg, DestRegister: reg, Len: 4, Mask: mask[:], Xor: make([]byte, 4)},
		&expr.Cmp{Op: expr.CmpOpEq, Register: reg, Data: addr[:]},
	}, nil
}

// prefixMask is the network-order netmask of an IPv4 prefix length.
func prefixMask(bits int) [4]byte {
	var m [4]byte
	for i := range bits {
		m[i/8] |= 0x80 >> (i % 8)
	}
	return m
}

// encodeProtoIn matches the layer 4 protocol: a compare for one protocol,
// a lookup in an anonymous constant set for several (nft does the same and
// prints it back as `meta l4proto { tcp, udp }`).
func encodeProtoIn(table *nftables.Table, x ProtoIn) ([]expr.Any, []anonSet, error) {
	reg := wireRegister(reg32First)
	load := &expr.Meta{Key: expr.MetaKeyL4PROTO, Register: reg}
	switch len(x.Protos) {
	case 0:
		return nil, nil, fmt.Errorf("meta l4proto match with no protocols")
	case 1:
		return []expr.Any{load, &expr.Cmp{Op: expr.CmpOpEq, Register: reg, Data: []byte{x.Protos[0]}}}, nil, nil
	}
	set := &nftables.Set{Table: table, Anonymous: true, Constant: true, KeyType: nftables.TypeInetProto}
	elems := make([]nftables.SetElement, len(x.Protos))
	for i, p := range x.Protos {
		elems[i] = nftables.SetElement{Key: []byte{p}}
	}
	lookup := &expr.Lookup{SourceRegister: reg}
	return []expr.Any{load, lookup}, []anonSet{{set: set, elems: elems, lookup: lookup}}, nil
}

// ctMaskNonZero matches when any of mask's bits is set in the conntrack
// state or status (host-endian u32): `ct state established,related`.
func ctMaskNonZero(key expr.CtKey, mask uint32) []expr.Any {
	reg := wireRegister(reg32First)
	return []expr.Any{
		&expr.Ct{Key: key, Register: reg},
		&expr.Bitwise{SourceRegister: reg, DestRegister: reg, Len: 4,
			Mask: binaryutil.NativeEndian.PutUint32(mask), Xor: make([]byte, 4)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: reg, Data: make([]byte, 4)},
	}
}

// encodeVerdictMap looks the key up in a verdict map, the result going
// straight to the verdict register.
func (e *ruleEncoder) encodeVerdictMap(x VerdictMap) ([]expr.Any, []anonSet, error) {
	if s := e.sets[x.Map]; s == nil || !s.IsVerdictMap() {
		return nil, nil, fmt.Errorf("vmap @%s: not a verdict map of this ruleset", x.Map)
	}
	load, sreg, err := e.loadKey(x.Key, x.Map)
	if err != nil {
		return nil, nil, err
	}
	return append(load, &expr.Lookup{SourceRegister: sreg, SetName: x.Map,
		IsDestRegSet: true, DestRegister: regVerdict}), nil, nil
}

// encodeDNATMap looks the key up in an address . port map, the data going
// to reg 1 (address, 32-bit register 8) and the next 32-bit register
// (port, 9), and translates the destination to them. Like nft we leave
// NFTA_NAT_FLAGS out: the kernel derives map-IPs and proto-specified from
// the registers given.
func (e *ruleEncoder) encodeDNATMap(x DNATMap) ([]expr.Any, []anonSet, error) {
	s := e.sets[x.Map]
	if s == nil || len(s.Data) != 2 || s.Data[0] != TypeIPv4Addr || s.Data[1] != TypeInetService {
		return nil, nil, fmt.Errorf("dnat map @%s: not an ipv4_addr . inet_service map of this ruleset", x.Map)
	}
	load, sreg, err := e.loadKey(x.Key, x.Map)
	if err != nil {
		return nil, nil, err
	}
	addrReg := uint32(reg32First)
	portReg := addrReg + fieldRegisters(TypeIPv4Addr)
	return append(load,
		&expr.Lookup{SourceRegister: sreg, SetName: x.Map, IsDestRegSet: true, DestRegister: wireRegister(addrReg)},
		&expr.NAT{Type: expr.NATTypeDestNAT, Family: unix.NFPROTO_IPV4,
			RegAddrMin: wireRegister(addrReg), RegProtoMin: wireRegister(portReg)},
	), nil, nil
}

// encodeVerdict encodes accept, drop, return and jump.
func encodeVerdict(v Verdict) (*expr.Verdict, error) {
	switch v.Kind {
	case Accept:
		return &expr.Verdict{Kind: expr.VerdictAccept}, nil
	case Drop:
		return &expr.Verdict{Kind: expr.VerdictDrop}, nil
	case Return:
		return &expr.Verdict{Kind: expr.VerdictReturn}, nil
	case Jump:
		if v.Chain == "" {
			return nil, fmt.Errorf("jump without a chain")
		}
		return &expr.Verdict{Kind: expr.VerdictJump, Chain: v.Chain}, nil
	}
	return nil, fmt.Errorf("verdict kind %d has no netlink encoding", int(v.Kind))
}
