package nft

import (
	"fmt"
	"net/netip"
)

// lookup reports whether the concatenated key is an element of the named
// set (or a key of the named map).
func (t *tracer) lookup(key []Field, name string) (bool, error) {
	_, elems, err := t.matches(key, name)
	return len(elems) > 0, err
}

// lookupVerdict finds the verdict the key maps to in a verdict map.
func (t *tracer) lookupVerdict(e VerdictMap) (Verdict, bool, error) {
	set, elems, err := t.matches(e.Key, e.Map)
	if err != nil {
		return Verdict{}, false, err
	}
	if !set.IsVerdictMap() {
		return Verdict{}, false, fmt.Errorf("vmap @%s: not a verdict map", e.Map)
	}
	elem, found, err := single(set, elems)
	if err != nil || !found {
		return Verdict{}, false, err
	}
	if elem.Verdict == nil {
		return Verdict{}, false, fmt.Errorf("vmap @%s: element %s has no verdict", e.Map, ElementString(set, elem))
	}
	return *elem.Verdict, true, nil
}

// lookupDNAT finds the address and port the key maps to in a DNAT map.
func (t *tracer) lookupDNAT(e DNATMap) (netip.AddrPort, bool, error) {
	set, elems, err := t.matches(e.Key, e.Map)
	if err != nil {
		return netip.AddrPort{}, false, err
	}
	if len(set.Data) != 2 || set.Data[0] != TypeIPv4Addr || set.Data[1] != TypeInetService {
		return netip.AddrPort{}, false, fmt.Errorf("dnat map @%s: data is %s, want ipv4_addr . inet_service",
			e.Map, typeNames(set.Data))
	}
	elem, found, err := single(set, elems)
	if err != nil || !found {
		return netip.AddrPort{}, false, err
	}
	if len(elem.Data) != 2 || !elem.Data[0].Addr.Is4() {
		return netip.AddrPort{}, false, fmt.Errorf("dnat map @%s: element %s has no address . port",
			e.Map, ElementString(set, elem))
	}
	return netip.AddrPortFrom(elem.Data[0].Addr, elem.Data[1].Num), true, nil
}

// single picks the one element a map lookup found. Two elements with
// different data for one key are overlapping intervals, which the kernel
// refuses to load: reporting them beats picking one.
func single(set *Set, elems []Element) (Element, bool, error) {
	if len(elems) == 0 {
		return Element{}, false, nil
	}
	for _, e := range elems[1:] {
		if ElementString(set, e) != ElementString(set, elems[0]) {
			return Element{}, false, fmt.Errorf("map @%s: key matches both %s and %s",
				set.Name, ElementString(set, elems[0]), ElementString(set, e))
		}
	}
	return elems[0], true, nil
}

// matches returns the named set and its elements whose key matches the
// packet's values for key. The key must fit the set's type exactly.
func (t *tracer) matches(key []Field, name string) (*Set, []Element, error) {
	set := t.rs.Set(name)
	if set == nil {
		return nil, nil, fmt.Errorf("lookup of unknown set @%s", name)
	}
	if len(key) != len(set.Key) {
		return nil, nil, fmt.Errorf("key %s has %d fields, set @%s is %s",
			fieldsString(key), len(key), name, typeNames(set.Key))
	}
	values := make([]Value, len(key))
	for i, f := range key {
		if f.Type() != set.Key[i] {
			return nil, nil, fmt.Errorf("key %s does not fit set @%s of type %s",
				fieldsString(key), name, typeNames(set.Key))
		}
		v, err := t.field(f)
		if err != nil {
			return nil, nil, err
		}
		values[i] = v
	}
	var found []Element
	for _, e := range set.Elements {
		ok, err := elementMatches(set, e, values)
		if err != nil {
			return nil, nil, err
		}
		if ok {
			found = append(found, e)
		}
	}
	return set, found, nil
}

func elementMatches(set *Set, e Element, values []Value) (bool, error) {
	if len(e.Key) != len(values) {
		return false, fmt.Errorf("set @%s: element %s has %d key fields, want %d",
			set.Name, ElementKeyString(set, e), len(e.Key), len(values))
	}
	for i, v := range values {
		ok, err := valueMatches(set.Key[i], e.Key[i], v)
		if err != nil || !ok {
			return false, err
		}
	}
	return true, nil
}

// valueMatches compares one key field of an element with the packet's
// value. Address fields may hold a prefix: containment is a match.
func valueMatches(t Datatype, elem, pkt Value) (bool, error) {
	switch t {
	case TypeIfname:
		return elem.Ifname == pkt.Ifname, nil
	case TypeIPv4Addr:
		if elem.Prefix.IsValid() {
			return elem.Prefix.Contains(pkt.Addr), nil
		}
		return elem.Addr == pkt.Addr, nil
	case TypeInetProto, TypeInetService:
		return elem.Num == pkt.Num, nil
	}
	return false, fmt.Errorf("tracer does not know key datatype %s", t.Name())
}
