package nft

import (
	"fmt"
	"net/netip"
	"slices"
)

// maxJumpDepth is the kernel's jump stack (NFT_JUMP_STACK_SIZE).
const maxJumpDepth = 16

// evalChain runs the rules of c. It returns Accept or Drop when a verdict
// ended the chain, and 0 when the chain ran out or returned: a base chain's
// policy (accept) or a return to the caller.
func (t *tracer) evalChain(c *Chain, depth int) (VerdictKind, error) {
	if depth > maxJumpDepth {
		return 0, fmt.Errorf("chain %q: jumps nested deeper than %d", c.Name, maxJumpDepth)
	}
	matched := false
	for i, r := range c.Rules {
		tag := ruleTag(c, i, r)
		ok, effect, verdict, err := t.evalRule(r)
		if err != nil {
			return 0, fmt.Errorf("chain %q rule %d [%s] %q: %w", c.Name, i+1, tag, RuleString(r), err)
		}
		if !ok {
			continue
		}
		matched = true
		t.res.Rules = append(t.res.Rules, tag)
		t.res.Trail = append(t.res.Trail, fmt.Sprintf("%s: %s [%s] {%s}", c.Name, effect, tag, RuleString(r)))
		if verdict == nil {
			continue
		}
		switch verdict.Kind {
		case Accept, Drop:
			if verdict.Kind == Drop || t.chainType == "filter" {
				t.res.DecidedBy = tag
			}
			return verdict.Kind, nil
		case Return:
			return 0, nil
		case Jump:
			v, err := t.jump(c, verdict.Chain, depth)
			if err != nil || v != 0 {
				return v, err
			}
		default:
			return 0, fmt.Errorf("chain %q rule %d [%s]: unknown verdict kind %d", c.Name, i+1, tag, verdict.Kind)
		}
	}
	t.res.Trail = append(t.res.Trail, chainEnd(c, matched))
	return 0, nil
}

func (t *tracer) jump(from *Chain, target string, depth int) (VerdictKind, error) {
	c := t.rs.Chain(target)
	if c == nil {
		return 0, fmt.Errorf("chain %q: jump to unknown chain %q", from.Name, target)
	}
	if c.Hook != nil {
		return 0, fmt.Errorf("chain %q: jump to base chain %q", from.Name, target)
	}
	return t.evalChain(c, depth+1)
}

func chainEnd(c *Chain, matched bool) string {
	switch {
	case c.Hook == nil && matched:
		return c.Name + ": end of chain, return"
	case c.Hook == nil:
		return c.Name + ": no match, return"
	case matched:
		return c.Name + ": end of chain, policy accept"
	}
	return c.Name + ": no match, policy accept"
}

// ruleTag names a rule in the trail: its comment, or chain#position.
func ruleTag(c *Chain, i int, r Rule) string {
	if r.Comment != "" {
		return r.Comment
	}
	return fmt.Sprintf("%s#%d", c.Name, i+1)
}

// evalRule runs one rule's expressions in order. ok is false when a match
// failed (or a map lookup missed: the kernel's NFT_BREAK). A terminal
// statement or verdict ends the rule with verdict set.
func (t *tracer) evalRule(r Rule) (ok bool, effect string, verdict *Verdict, err error) {
	for _, e := range r.Exprs {
		switch e := e.(type) {
		case Verdict:
			return true, verdictString(e), &e, nil
		case VerdictMap:
			v, found, err := t.lookupVerdict(e)
			if err != nil || !found {
				return false, "", nil, err
			}
			return true, e.Map + " → " + verdictString(v), &v, nil
		case DNATMap:
			to, found, err := t.lookupDNAT(e)
			if err != nil || !found {
				return false, "", nil, err
			}
			t.applyDNAT(to)
			// NAT statements are terminal: they accept in their chain.
			return true, fmt.Sprintf("DNAT → %v", to), &accept, nil
		case Masquerade:
			t.res.Masquerade = true
			return true, "masquerade", &accept, nil
		default:
			match, err := t.evalMatch(e)
			if err != nil || !match {
				return false, "", nil, err
			}
		}
	}
	return true, "match", nil, nil
}

func (t *tracer) applyDNAT(to netip.AddrPort) {
	t.pkt.Daddr, t.pkt.Dport = to.Addr(), to.Port()
	t.dnatted = true
	t.res.DNAT = &to
}

// evalMatch evaluates one match expression.
func (t *tracer) evalMatch(e Expr) (bool, error) {
	switch e := e.(type) {
	case Lookup:
		found, err := t.lookup(e.Key, e.Set)
		return found != e.Negate, err
	case PrefixMatch:
		if e.Field.Type() != TypeIPv4Addr {
			return false, fmt.Errorf("prefix match on %s: not an address field", fieldName(e.Field))
		}
		v, err := t.field(e.Field)
		if err != nil {
			return false, err
		}
		return e.Prefix.Contains(v.Addr), nil
	case ProtoIn:
		return slices.Contains(e.Protos, t.pkt.Proto), nil
	case CtStateIn:
		return t.ctStateIn(e.States)
	case CtStatusDNAT:
		if !t.ctVisible() {
			return false, nil // no connection yet: the kernel's NFT_BREAK
		}
		return t.dnatted || (!t.isNew() && t.pkt.CtDNAT), nil
	case CtStatusConfirmed:
		// Related counts as unconfirmed: the first packet of an expected
		// connection is. (ESTABLISHED accepts both kinds first anyway.)
		return t.ctVisible() && (t.pkt.CtState == "established" || t.pkt.CtState == "unreplied"), nil
	case FibDaddrLocal:
		return t.isLocal(t.pkt.Daddr), nil
	}
	return false, fmt.Errorf("tracer does not know expression %T", e)
}

func (t *tracer) ctStateIn(states []string) (bool, error) {
	for _, s := range states {
		if CtStateBit(s) == 0 {
			return false, fmt.Errorf("unknown conntrack state %q", s)
		}
	}
	state := t.pkt.CtState
	if state == "unreplied" {
		state = "new" // conntrack's state for it; only ct status tells it apart
	}
	if !t.ctVisible() {
		state = "invalid" // what nft reports for a packet conntrack has not seen
	}
	return slices.Contains(states, state), nil
}

// field is the current value of a packet or metadata field. Interfaces not
// known at this point of the walk are "", as in the kernel.
func (t *tracer) field(f Field) (Value, error) {
	switch f {
	case FieldIIFName:
		return IfnameValue(t.pkt.IIF), nil
	case FieldOIFName:
		return IfnameValue(t.oif), nil
	case FieldIPSaddr:
		return AddrValue(t.pkt.Saddr), nil
	case FieldIPDaddr:
		return AddrValue(t.pkt.Daddr), nil
	case FieldL4Proto:
		return ProtoValue(t.pkt.Proto), nil
	case FieldTHDport:
		return PortValue(t.pkt.Dport), nil
	}
	return Value{}, fmt.Errorf("tracer does not know field %d", int(f))
}
