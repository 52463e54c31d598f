package nft

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
)

// ifnameMaxLen is the longest interface name (IFNAMSIZ less the NUL).
const ifnameMaxLen = 15

// kernelSets is kernelSet of each set, in order.
func kernelSets(table *nftables.Table, sets []*Set) ([]*nftables.Set, error) {
	out := make([]*nftables.Set, len(sets))
	for i, s := range sets {
		ks, err := kernelSet(table, s)
		if err != nil {
			return nil, err
		}
		out[i] = ks
	}
	return out, nil
}

// kernelSet is the netlink definition of a model set, without elements.
// Flags follow what nft sends for the same text: NFT_SET_CONCAT only for a
// range key of several fields (pipapo); host-endian key byte order for
// ifname keys, or `nft list` prints their elements as "".
func kernelSet(table *nftables.Table, s *Set) (*nftables.Set, error) {
	key, err := setDatatype(s.Key)
	if err != nil {
		return nil, fmt.Errorf("set %s key: %w", s.Name, err)
	}
	ks := &nftables.Set{Table: table, Name: s.Name, KeyType: key, Interval: s.Interval,
		Concatenation: s.Interval && len(s.Key) > 1, Size: s.Size}
	if s.IsMap() {
		data, err := setDatatype(s.Data)
		if err != nil {
			return nil, fmt.Errorf("map %s data: %w", s.Name, err)
		}
		ks.IsMap, ks.DataType = true, data
	}
	if len(s.Key) == 1 {
		switch s.Key[0] {
		case TypeIfname, TypeInetProto:
			ks.KeyByteOrder = binaryutil.NativeEndian
		default:
			ks.KeyByteOrder = binaryutil.BigEndian
		}
	}
	return ks, nil
}

// setDatatype is the nftables datatype of a key or data: a concatenation
// type for several fields.
func setDatatype(types []Datatype) (nftables.SetDatatype, error) {
	base := make([]nftables.SetDatatype, len(types))
	for i, t := range types {
		switch t {
		case TypeIfname:
			base[i] = nftables.TypeIFName
		case TypeIPv4Addr:
			base[i] = nftables.TypeIPAddr
		case TypeInetProto:
			base[i] = nftables.TypeInetProto
		case TypeInetService:
			base[i] = nftables.TypeInetService
		case TypeVerdict:
			if len(types) != 1 {
				return nftables.SetDatatype{}, fmt.Errorf("verdict cannot be concatenated")
			}
			base[i] = nftables.TypeVerdict
		default:
			return nftables.SetDatatype{}, fmt.Errorf("datatype %s has no netlink encoding", t.Name())
		}
	}
	switch len(base) {
	case 0:
		return nftables.SetDatatype{}, fmt.Errorf("no fields")
	case 1:
		return base[0], nil
	}
	return nftables.ConcatSetType(base...)
}

// modelDatatypes is the inverse of setDatatype, from the kernel's type name
// ("ipv4_addr . ifname").
func modelDatatypes(t nftables.SetDatatype) ([]Datatype, error) {
	names := strings.Split(t.Name, " . ")
	out := make([]Datatype, len(names))
	for i, n := range names {
		for _, d := range []Datatype{TypeIfname, TypeIPv4Addr, TypeInetProto, TypeInetService, TypeVerdict} {
			if d.Name() == n {
				out[i] = d
			}
		}
		if out[i] == 0 {
			return nil, fmt.Errorf("datatype %q is not one nftbridge uses", n)
		}
	}
	return out, nil
}

// encodeElements encodes model elements for the kernel. A prefix in a
// single-field interval set (rbtree) becomes a start element and an end
// element at the last address + 1 (without it the range would be open to
// 255.255.255.255); a range reaching the top of the key space has no end
// and is marked open, as nft marks it. In a concatenated interval set
// (pipapo) every element carries Key and KeyEnd, equal for single values.
func encodeElements(s *Set, elems []Element) ([]nftables.SetElement, error) {
	enc := elementEncoder{set: s, out: make([]nftables.SetElement, 0, len(elems))}
	// The keys and data of every element share one buffer, and elements
	// with the same verdict one *expr.Verdict: a restore encodes 34,000
	// elements, and an allocation per field was a sixth of its time.
	enc.buf = make([]byte, 0, len(elems)*enc.elementBytes())
	for _, e := range elems {
		if err := enc.add(e); err != nil {
			return nil, fmt.Errorf("set %s element %s: %w", s.Name, ElementString(s, e), err)
		}
	}
	return enc.out, nil
}

type elementEncoder struct {
	set      *Set
	out      []nftables.SetElement
	buf      []byte
	verdicts map[Verdict]*expr.Verdict
}

// elementBytes is what an element takes of the buffer at most: its key
// twice (a range's first and last value, or an interval's end), its data.
func (enc *elementEncoder) elementBytes() int {
	n := 0
	for _, t := range enc.set.Key {
		n += 2 * fieldLen(t, len(enc.set.Key) > 1)
	}
	for _, t := range enc.set.Data {
		if t != TypeVerdict {
			n += fieldLen(t, len(enc.set.Data) > 1)
		}
	}
	return n
}

// take returns the bytes appended to the buffer since start, capped so
// that later appends never write into them.
func (enc *elementEncoder) take(start int) []byte {
	return enc.buf[start:len(enc.buf):len(enc.buf)]
}

// values appends the fields of a key or data: the first value of the range
// each field covers or, last, the last one. Several fields are
// concatenated, each padded to a multiple of 4 bytes (one 32-bit register).
func (enc *elementEncoder) values(types []Datatype, values []Value, last bool) ([]byte, error) {
	if len(values) != len(types) {
		return nil, fmt.Errorf("%d fields, type %s has %d", len(values), typeNames(types), len(types))
	}
	start := len(enc.buf)
	var err error
	if enc.buf, err = appendValues(enc.buf, types, values, last); err != nil {
		enc.buf = enc.buf[:start]
		return nil, err
	}
	return enc.take(start), nil
}

func (enc *elementEncoder) add(e Element) error {
	s := enc.set
	lo, err := enc.values(s.Key, e.Key, false)
	if err != nil {
		return err
	}
	hi, ranged := lo, isRange(s.Key, e.Key)
	if ranged {
		if hi, err = enc.values(s.Key, e.Key, true); err != nil {
			return err
		}
	}
	ke := nftables.SetElement{Key: lo}
	switch {
	case s.IsVerdictMap():
		if e.Verdict == nil {
			return fmt.Errorf("verdict map element without a verdict")
		}
		if ke.VerdictData, err = enc.verdict(*e.Verdict); err != nil {
			return err
		}
	case s.IsMap():
		if ke.Val, err = enc.values(s.Data, e.Data, false); err != nil {
			return fmt.Errorf("data: %w", err)
		}
		if isRange(s.Data, e.Data) {
			return fmt.Errorf("data cannot be a range")
		}
	}
	switch {
	case !s.Interval:
		if ranged {
			return fmt.Errorf("a range needs an interval set")
		}
		enc.out = append(enc.out, ke)
		return nil
	case len(s.Key) > 1:
		ke.KeyEnd = hi
		enc.out = append(enc.out, ke)
		return nil
	}
	start := len(enc.buf)
	enc.buf = append(enc.buf, hi...)
	end := enc.take(start)
	if incrementInPlace(end) {
		ke.IntervalOpen = true
		enc.out = append(enc.out, ke)
		return nil
	}
	enc.out = append(enc.out, ke, nftables.SetElement{Key: end, IntervalEnd: true})
	return nil
}

// verdict encodes v once per encoder.
func (enc *elementEncoder) verdict(v Verdict) (*expr.Verdict, error) {
	if ev, ok := enc.verdicts[v]; ok {
		return ev, nil
	}
	ev, err := encodeVerdict(v)
	if err != nil {
		return nil, err
	}
	if enc.verdicts == nil {
		enc.verdicts = map[Verdict]*expr.Verdict{}
	}
	enc.verdicts[v] = ev
	return ev, nil
}

// isRange reports whether values cover more than one key: an IPv4 prefix
// shorter than /32 in an address field.
func isRange(types []Datatype, values []Value) bool {
	for i, t := range types {
		if i < len(values) && t == TypeIPv4Addr && values[i].Prefix.IsValid() && values[i].Prefix.Bits() < 32 {
			return true
		}
	}
	return false
}

// fieldLen is a field's length in a key, padded when concatenated.
func fieldLen(t Datatype, concat bool) int {
	n := t.Len()
	if concat {
		n = (n + 3) &^ 3
	}
	return n
}

func appendValues(dst []byte, types []Datatype, values []Value, last bool) ([]byte, error) {
	concat := len(types) > 1
	for i, t := range types {
		start := len(dst)
		var err error
		if dst, err = appendValue(dst, t, values[i], last); err != nil {
			return nil, err
		}
		if concat {
			for range (4 - (len(dst)-start)%4) % 4 {
				dst = append(dst, 0)
			}
		}
	}
	return dst, nil
}

// appendValue encodes one field: addresses and ports in network order,
// interface names NUL-padded to 16 bytes, protocols as one byte. last picks
// the last address of a prefix rather than the first.
func appendValue(dst []byte, t Datatype, v Value, last bool) ([]byte, error) {
	switch t {
	case TypeIfname:
		if v.Ifname == "" || len(v.Ifname) > ifnameMaxLen {
			return nil, fmt.Errorf("interface name %q: must be 1 to %d bytes", v.Ifname, ifnameMaxLen)
		}
		dst = append(dst, v.Ifname...)
		for range TypeIfname.Len() - len(v.Ifname) {
			dst = append(dst, 0)
		}
		return dst, nil
	case TypeIPv4Addr:
		p := v.Prefix
		if !p.IsValid() {
			p = netip.PrefixFrom(v.Addr, 32)
		}
		if !p.IsValid() || !p.Addr().Is4() {
			return nil, fmt.Errorf("%v is not an IPv4 address or prefix", v)
		}
		a := p.Masked().Addr()
		if last {
			a = lastAddr(p)
		}
		b := a.As4()
		return append(dst, b[:]...), nil
	case TypeInetProto:
		if v.Num > 255 {
			return nil, fmt.Errorf("protocol %d is not a byte", v.Num)
		}
		return append(dst, byte(v.Num)), nil
	case TypeInetService:
		return binary.BigEndian.AppendUint16(dst, v.Num), nil
	}
	return nil, fmt.Errorf("datatype %s has no element encoding", t.Name())
}

// lastAddr is the last address of an IPv4 prefix.
func lastAddr(p netip.Prefix) netip.Addr {
	a := p.Masked().Addr().As4()
	n := binary.BigEndian.Uint32(a[:]) | ^uint32(0)>>p.Bits() // >>32 is 0 in Go
	return netip.AddrFrom4([4]byte(binary.BigEndian.AppendUint32(nil, n)))
}

// incrementInPlace adds one to a big-endian number; it reports a carry
// out of the top byte.
func incrementInPlace(b []byte) (overflow bool) {
	for i := len(b) - 1; i >= 0; i-- {
		b[i]++
		if b[i] != 0 {
			return false
		}
	}
	return true
}

// decrement subtracts one from a big-endian number greater than zero.
func decrement(b []byte) []byte {
	out := append([]byte(nil), b...)
	for i := len(out) - 1; i >= 0; i-- {
		out[i]--
		if out[i] != 0xff {
			break
		}
	}
	return out
}
