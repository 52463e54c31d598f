package nft

import (
	"bytes"
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Render prints the ruleset in nft syntax, as `nft list table ip nftbridge`
// would, with one element per line. The output can be loaded with `nft -f`.
func Render(rs *Ruleset) string { return render(rs, false) }

// RenderTerse prints the ruleset without set elements, exactly as
// `nft -t list table ip nftbridge` does: the parity tests compare the two.
func RenderTerse(rs *Ruleset) string { return render(rs, true) }

func render(rs *Ruleset, terse bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "table ip %s {\n", rs.Table)
	first := true
	sep := func() {
		if !first {
			b.WriteString("\n")
		}
		first = false
	}
	for _, s := range rs.Sets {
		sep()
		renderSet(&b, s, terse)
	}
	for _, c := range rs.Chains {
		sep()
		renderChain(&b, c)
	}
	b.WriteString("}\n")
	return b.String()
}

func renderSet(b *strings.Builder, s *Set, terse bool) {
	kind := "set"
	if s.IsMap() {
		kind = "map"
	}
	fmt.Fprintf(b, "\t%s %s {\n\t\ttype %s", kind, s.Name, typeNames(s.Key))
	if s.IsMap() {
		fmt.Fprintf(b, " : %s", typeNames(s.Data))
	}
	b.WriteString("\n")
	if s.Size > 0 {
		fmt.Fprintf(b, "\t\tsize %d\n", s.Size)
	}
	if s.Interval {
		b.WriteString("\t\tflags interval\n")
	}
	if !terse && len(s.Elements) > 0 {
		b.WriteString("\t\telements = { ")
		perLine := elementsPerLine(s)
		sorted := &Set{Key: s.Key, Data: s.Data, Elements: slices.Clone(s.Elements)}
		sortElements(sorted)
		for i, e := range sorted.Elements {
			switch {
			case i == 0:
			case i%perLine == 0:
				b.WriteString(",\n\t\t\t     ")
			default:
				b.WriteString(", ")
			}
			b.WriteString(ElementString(s, e))
		}
		b.WriteString(" }\n")
	}
	b.WriteString("\t}\n")
}

// elementsPerLine is how many elements nft prints on one line: five numbers
// (ports, protocols), two addresses, or one of anything else (names,
// concatenations, map elements).
func elementsPerLine(s *Set) int {
	if len(s.Key) > 1 || s.IsMap() {
		return 1
	}
	switch s.Key[0] {
	case TypeInetService, TypeInetProto:
		return 5
	case TypeIPv4Addr:
		return 2
	}
	return 1
}

func typeNames(types []Datatype) string {
	names := make([]string, len(types))
	for i, t := range types {
		names[i] = t.Name()
	}
	return strings.Join(names, " . ")
}

// ElementString prints one element as nft does: key, and " : data" in maps.
func ElementString(s *Set, e Element) string {
	out := ElementKeyString(s, e)
	switch {
	case s.IsVerdictMap() && e.Verdict != nil:
		out += " : " + verdictString(*e.Verdict)
	case s.IsMap():
		out += " : " + valuesString(s.Data, e.Data)
	}
	return out
}

// ElementKeyString prints the element's key only.
func ElementKeyString(s *Set, e Element) string { return valuesString(s.Key, e.Key) }

func valuesString(types []Datatype, values []Value) string {
	parts := make([]string, len(values))
	for i, v := range values {
		var t Datatype
		if i < len(types) {
			t = types[i]
		}
		parts[i] = valueString(t, v)
	}
	return strings.Join(parts, " . ")
}

func valueString(t Datatype, v Value) string {
	switch t {
	case TypeIfname:
		return strconv.Quote(v.Ifname)
	case TypeIPv4Addr:
		if v.Prefix.IsValid() {
			if v.Prefix.Bits() == 32 {
				return v.Prefix.Addr().String()
			}
			return v.Prefix.String()
		}
		return v.Addr.String()
	case TypeInetProto:
		return protoName(uint8(v.Num))
	case TypeInetService:
		return strconv.Itoa(int(v.Num))
	}
	return fmt.Sprintf("<%s?>", t.Name())
}

func protoName(p uint8) string {
	switch p {
	case ProtoTCP:
		return "tcp"
	case ProtoUDP:
		return "udp"
	}
	return strconv.Itoa(int(p))
}

func renderChain(b *strings.Builder, c *Chain) {
	fmt.Fprintf(b, "\tchain %s {\n", c.Name)
	if h := c.Hook; h != nil {
		fmt.Fprintf(b, "\t\ttype %s hook %s priority %s; policy accept;\n", h.Type, h.Hook, priorityName(h))
	}
	for _, r := range c.Rules {
		b.WriteString("\t\t" + RuleString(r) + "\n")
	}
	b.WriteString("\t}\n")
}

// priorityName prints a priority the way nft does: by its standard name where
// nft knows one for that hook, as a number otherwise.
func priorityName(h *Hook) string {
	switch {
	case h.Priority == PriorityRaw:
		return "raw"
	case h.Priority == -150:
		return "mangle"
	case h.Priority == PriorityDstNAT && h.Hook == "prerouting":
		return "dstnat"
	case h.Priority == PriorityFilter:
		return "filter"
	case h.Priority == 50:
		return "security"
	case h.Priority == PrioritySrcNAT && h.Hook == "postrouting":
		return "srcnat"
	}
	return strconv.Itoa(h.Priority)
}

// RuleString prints one rule in nft syntax.
func RuleString(r Rule) string {
	parts := make([]string, 0, len(r.Exprs)+1)
	for _, e := range r.Exprs {
		parts = append(parts, ExprString(e))
	}
	if r.Comment != "" {
		parts = append(parts, "comment "+strconv.Quote(r.Comment))
	}
	return strings.Join(parts, " ")
}

// ExprString prints one expression in nft syntax.
func ExprString(e Expr) string {
	switch e := e.(type) {
	case Lookup:
		op := " @"
		if e.Negate {
			op = " != @"
		}
		return fieldsString(e.Key) + op + e.Set
	case PrefixMatch:
		return fieldName(e.Field) + " " + e.Prefix.String()
	case ProtoIn:
		names := make([]string, len(e.Protos))
		for i, p := range e.Protos {
			names[i] = protoName(p)
		}
		if len(names) == 1 {
			return "meta l4proto " + names[0]
		}
		return "meta l4proto { " + strings.Join(names, ", ") + " }"
	case CtStateIn:
		return "ct state " + strings.Join(sortedStates(e.States), ",")
	case CtStatusDNAT:
		return "ct status dnat"
	case CtStatusConfirmed:
		return "ct status confirmed"
	case FibDaddrLocal:
		return "fib daddr type local"
	case VerdictMap:
		return fieldsString(e.Key) + " vmap @" + e.Map
	case DNATMap:
		return "dnat ip to " + fieldsString(e.Key) + " map @" + e.Map
	case Masquerade:
		return "masquerade"
	case Verdict:
		return verdictString(e)
	}
	return fmt.Sprintf("<unknown expression %T>", e)
}

func fieldsString(fields []Field) string {
	names := make([]string, len(fields))
	for i, f := range fields {
		names[i] = fieldName(f)
	}
	return strings.Join(names, " . ")
}

func fieldName(f Field) string {
	switch f {
	case FieldIIFName:
		return "iifname"
	case FieldOIFName:
		return "oifname"
	case FieldIPSaddr:
		return "ip saddr"
	case FieldIPDaddr:
		return "ip daddr"
	case FieldL4Proto:
		return "meta l4proto"
	case FieldTHDport:
		return "th dport"
	}
	return fmt.Sprintf("<field %d>", int(f))
}

func verdictString(v Verdict) string {
	switch v.Kind {
	case Accept:
		return "accept"
	case Drop:
		return "drop"
	case Return:
		return "return"
	case Jump:
		return "jump " + v.Chain
	}
	return fmt.Sprintf("<verdict %d>", int(v.Kind))
}

// ctStateBits are the conntrack state bits, in the order nft prints them.
var ctStateBits = map[string]uint32{"invalid": 1, "established": 2, "related": 4, "new": 8, "untracked": 64}

// CtStateBit returns the kernel bit of a conntrack state name, or 0.
func CtStateBit(name string) uint32 { return ctStateBits[name] }

func sortedStates(states []string) []string {
	out := slices.Clone(states)
	slices.SortFunc(out, func(a, b string) int { return int(ctStateBits[a]) - int(ctStateBits[b]) })
	return out
}

// sortElements orders elements as `nft list` prints them, so that Render
// and the kernel's listing read the same: nft reads a key as one number,
// the bytes of a concatenation or an interface name little-endian (the
// last byte counts most), a single address or port as its value. Render and
// the read-back path use it. Keys are encoded once, into one buffer:
// printing 34,000 keys to sort them as strings was far slower. A key that
// does not encode sorts first; the applier reports it.
func sortElements(s *Set) {
	type keyed struct {
		key []byte
		el  Element
	}
	all := make([]keyed, len(s.Elements))
	width := 0
	for _, t := range s.Key {
		width += fieldLen(t, len(s.Key) > 1)
	}
	buf := make([]byte, 0, width*len(s.Elements))
	for i, e := range s.Elements {
		start := len(buf)
		if enc, err := appendValues(buf, s.Key, e.Key, false); err == nil {
			buf = enc
		}
		all[i] = keyed{buf[start:len(buf):len(buf)], e}
	}
	compare := bytes.Compare
	if len(s.Key) > 1 || s.Key[0] == TypeIfname {
		compare = compareLittleEndian
	}
	slices.SortFunc(all, func(a, b keyed) int { return compare(a.key, b.key) })
	for i := range all {
		s.Elements[i] = all[i].el
	}
}

// compareLittleEndian compares two keys as little-endian numbers.
func compareLittleEndian(a, b []byte) int {
	if c := cmp.Compare(len(a), len(b)); c != 0 {
		return c
	}
	for i := len(a) - 1; i >= 0; i-- {
		if c := cmp.Compare(a[i], b[i]); c != 0 {
			return c
		}
	}
	return 0
}
