package nft

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
)

// ifnameMaxLen is the longest interface name (IFNAMSIZ less the NUL).
const ifnameMaxLen = 15

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
	out := make([]nftables.SetElement, 0, len(elems))
	for _, e := range elems {
		ke, err := encodeElement(s, e)
		if err != nil {
			return nil, fmt.Errorf("set %s element %s: %w", s.Name, ElementString(s, e), err)
		}
		out = append(out, ke...)
	}
	return out, nil
}

func encodeElement(s *Set, e Element) ([]nftables.SetElement, error) {
	lo, hi, err := encodeValues(s.Key, e.Key)
	if err != nil {
		return nil, err
	}
	ke := nftables.SetElement{Key: lo}
	switch {
	case s.IsVerdictMap():
		if e.Verdict == nil {
			return nil, fmt.Errorf("verdict map element without a verdict")
		}
		v, err := encodeVerdict(*e.Verdict)
		if err != nil {
			return nil, err
		}
		ke.VerdictData = v
	case s.IsMap():
		data, dataHi, err := encodeValues(s.Data, e.Data)
		if err != nil {
			return nil, fmt.Errorf("data: %w", err)
		}
		if string(data) != string(dataHi) {
			return nil, fmt.Errorf("data cannot be a range")
		}
		ke.Val = data
	}
	switch {
	case !s.Interval:
		if string(lo) != string(hi) {
			return nil, fmt.Errorf("a range needs an interval set")
		}
		return []nftables.SetElement{ke}, nil
	case len(s.Key) > 1:
		ke.KeyEnd = hi
		return []nftables.SetElement{ke}, nil
	}
	end, overflow := increment(hi)
	if overflow {
		ke.IntervalOpen = true
		return []nftables.SetElement{ke}, nil
	}
	return []nftables.SetElement{ke, {Key: end, IntervalEnd: true}}, nil
}

// encodeValues encodes the fields of a key or data: the first and last value
// of the range each field covers. Several fields are concatenated, each
// padded to a multiple of 4 bytes (one 32-bit register). It allocates one
// buffer per element, two only for a range: a restore encodes 34,000
// elements, and a slice per field was a sixth of its time.
func encodeValues(types []Datatype, values []Value) (lo, hi []byte, err error) {
	if len(values) != len(types) {
		return nil, nil, fmt.Errorf("%d fields, type %s has %d", len(values), typeNames(types), len(types))
	}
	concat := len(types) > 1
	size, ranged := 0, false
	for i, t := range types {
		size += fieldLen(t, concat)
		if t == TypeIPv4Addr && values[i].Prefix.IsValid() && values[i].Prefix.Bits() < 32 {
			ranged = true
		}
	}
	if lo, err = appendValues(make([]byte, 0, size), types, values, false); err != nil || !ranged {
		return lo, lo, err
	}
	hi, err = appendValues(make([]byte, 0, size), types, values, true)
	return lo, hi, err
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

// increment adds one to a big-endian number; overflow reports a carry out
// of the top byte.
func increment(b []byte) (out []byte, overflow bool) {
	out = append([]byte(nil), b...)
	for i := len(out) - 1; i >= 0; i-- {
		out[i]++
		if out[i] != 0 {
			return out, false
		}
	}
	return out, true
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
