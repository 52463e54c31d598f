package nft

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"

	"github.com/google/nftables"
	"golang.org/x/sys/unix"
)

// reconcileAttempts bounds retries when another process changes the
// ruleset between our read of the table and our batch (ERESTART).
const reconcileAttempts = 3

// Reconcile makes our table equal to rs in one batch. Every chain of ours
// is created if missing, flushed and refilled; the user chain
// (Chain.UserOwned) is only created if missing, never flushed, so an
// administrator's rules in it survive. Every set is created if missing and
// given exactly rs's elements: Reconcile reads the kernel's elements and
// sends only the difference, because flushing and refilling a 10,000-element
// interval map costs the kernel seconds (pipapo); a set whose elements
// cannot be read back as model elements is flushed and refilled instead.
// A set or chain whose definition changed (an upgrade changed a key type or
// a hook) is deleted and re-created in the same batch, after the chains
// that use it were flushed. Chains and sets of our table that rs no longer
// has are deleted, never the user chain.
//
// The batch carries the ruleset generation its reads were made at, so a
// concurrent change makes the kernel refuse it (ERESTART) and Reconcile
// reads and plans again.
//
// A table that does not exist yet and gets installStagedMin elements or
// more is installed in stages instead (see installStaged): the kernel works
// on elements while the next ones are marshalled, and the table still
// starts filtering all at once, or is removed again if a stage fails.
func (a *Applier) Reconcile(rs *Ruleset) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if rs.Table != a.table.Name {
		return fmt.Errorf("reconcile table ip %s: ruleset is for table %q", a.table.Name, rs.Table)
	}
	var err error
	for range reconcileAttempts {
		if err = a.reconcileOnce(rs); !errors.Is(err, unix.ERESTART) {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("reconcile table ip %s: %w", a.table.Name, err)
	}
	return nil
}

func (a *Applier) reconcileOnce(rs *Ruleset) error {
	gen, err := a.conn.GetGen()
	if err != nil {
		return fmt.Errorf("read ruleset generation: %w", err)
	}
	cur, err := a.readTable()
	if err != nil {
		return err
	}
	if !cur.exists && rs.ElementCount() >= a.installStagedMin() {
		return a.installStaged(rs, gen.ID)
	}
	b, err := a.planReconcile(rs, cur)
	if err != nil {
		return err
	}
	return a.send(b, gen.ID)
}

// tableState is what the kernel has of our table: chains, named sets and
// their elements.
type tableState struct {
	exists   bool
	chains   map[string]*nftables.Chain
	sets     map[string]*nftables.Set
	elements map[string][]nftables.SetElement
}

// readTable reads our table's chains and named sets (none if it is missing).
func (a *Applier) readTable() (*tableState, error) {
	st := &tableState{chains: map[string]*nftables.Chain{}, sets: map[string]*nftables.Set{},
		elements: map[string][]nftables.SetElement{}}
	exists, err := a.tableExists()
	if err != nil || !exists {
		return st, err
	}
	st.exists = true
	chains, err := a.conn.ListChainsOfTableFamily(a.table.Family)
	if err != nil {
		return nil, fmt.Errorf("list chains: %w", err)
	}
	for _, c := range chains {
		if c.Table != nil && c.Table.Name == a.table.Name {
			st.chains[c.Name] = c
		}
	}
	sets, err := a.conn.GetSets(a.table)
	if err != nil {
		return nil, fmt.Errorf("list sets: %w", err)
	}
	for _, s := range sets {
		if s.Anonymous {
			continue
		}
		st.sets[s.Name] = s
		if st.elements[s.Name], err = a.conn.GetSetElements(s); err != nil {
			return nil, fmt.Errorf("read elements of set %s: %w", s.Name, err)
		}
	}
	return st, nil
}

// planReconcile builds the batch. Order matters inside it: chains are
// flushed before sets they use are deleted, chains exist before rules jump
// to them, sets exist before rules look them up.
func (a *Applier) planReconcile(rs *Ruleset, cur *tableState) (*batch, error) {
	b := &batch{}
	b.add(func(c *nftables.Conn) error { c.AddTable(a.table); return nil })
	chains, stale, err := a.planChains(b, rs, cur)
	if err != nil {
		return nil, err
	}
	if err := a.planSets(b, rs, cur); err != nil {
		return nil, err
	}
	// Stale chains go last: a verdict map element may still jump to one
	// until planSets has deleted or rewritten it, and the kernel refuses
	// to delete a chain something refers to.
	b.add(func(conn *nftables.Conn) error {
		for _, c := range stale {
			conn.DelChain(c)
		}
		return nil
	})
	enc := newRuleEncoder(a.table, rs)
	for _, c := range rs.Chains {
		if c.UserOwned {
			continue
		}
		for _, r := range c.Rules {
			er, err := enc.encodeRule(chains[c.Name], r)
			if err != nil {
				return nil, err
			}
			b.add(er.queue)
		}
	}
	return b, nil
}

// planChains adds (and flushes) our chains, creates user chains if missing,
// re-creates chains whose hook changed and flushes stale chains, which it
// returns for the caller to delete once nothing refers to them.
func (a *Applier) planChains(b *batch, rs *Ruleset, cur *tableState) (map[string]*nftables.Chain, []*nftables.Chain, error) {
	chains := map[string]*nftables.Chain{}
	for _, c := range rs.Chains {
		kc, err := kernelChain(a.table, c)
		if err != nil {
			return nil, nil, err
		}
		chains[c.Name] = kc
		have := cur.chains[c.Name]
		switch {
		case c.UserOwned || have == nil:
			b.add(func(conn *nftables.Conn) error { conn.AddChain(kc); return nil })
		case !sameChainDefinition(have, kc):
			b.note("re-created chain %s (its hook changed)", c.Name)
			b.add(func(conn *nftables.Conn) error { conn.DelChain(have); conn.AddChain(kc); return nil })
		default:
			b.add(func(conn *nftables.Conn) error { conn.AddChain(kc); conn.FlushChain(kc); return nil })
		}
	}
	var stale []*nftables.Chain
	for _, name := range slices.Sorted(maps.Keys(cur.chains)) {
		if chains[name] == nil && name != ChainUser {
			b.note("deleted stale chain %s", name)
			stale = append(stale, cur.chains[name])
		}
	}
	// Flush them all now: their rules may use sets planSets deletes, or
	// jump to one another.
	b.add(func(conn *nftables.Conn) error {
		for _, c := range stale {
			conn.FlushChain(c)
		}
		return nil
	})
	return chains, stale, nil
}

// planSets brings every set to rs's elements, re-creates sets whose
// definition changed, and deletes stale sets. It runs after planChains:
// the rules that used a set to be deleted are gone by then.
func (a *Applier) planSets(b *batch, rs *Ruleset, cur *tableState) error {
	want := map[string]bool{}
	sets, err := kernelSets(a.table, rs.Sets)
	if err != nil {
		return err
	}
	refill := make([]bool, len(rs.Sets))
	for i, s := range rs.Sets {
		have := cur.sets[s.Name]
		refill[i] = have == nil || !sameSetDefinition(have, sets[i])
	}
	encoded, err := encodeSets(rs.Sets, refill)
	if err != nil {
		return err
	}
	for i, s := range rs.Sets {
		want[s.Name] = true
		ks, have := sets[i], cur.sets[s.Name]
		switch {
		case have == nil:
			b.add(func(c *nftables.Conn) error { return c.AddSet(ks, nil) })
		case !sameSetDefinition(have, ks):
			b.note("re-created set %s (definition changed from %s)", s.Name, setDefinitionString(have))
			b.add(func(c *nftables.Conn) error { c.DelSet(have); return c.AddSet(ks, nil) })
		default:
			if err := a.planSetElements(b, s, ks, cur.elements[s.Name]); err != nil {
				return err
			}
			continue
		}
		b.addElements(ks, encoded[i], false)
	}
	for _, name := range slices.Sorted(maps.Keys(cur.sets)) {
		if !want[name] {
			b.note("deleted stale set %s", name)
			have := cur.sets[name]
			b.add(func(c *nftables.Conn) error { c.DelSet(have); return nil })
		}
	}
	return nil
}

// encodeSets encodes every element of the sets marked in which, side by
// side: on a restore that is most of the planning.
func encodeSets(sets []*Set, which []bool) ([][]nftables.SetElement, error) {
	encoded := make([][]nftables.SetElement, len(sets))
	errs := make([]error, len(sets))
	var wg sync.WaitGroup
	for i, s := range sets {
		if which[i] {
			wg.Go(func() { encoded[i], errs[i] = encodeElements(s, s.Elements) })
		}
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return encoded, nil
}

// planSetElements brings an existing set from the kernel's elements to
// s's: destroys of the elements that must go, adds of those that are
// missing or map to other data. Elements that cannot be read back as model
// elements (an administrator's odd range) make it flush and refill.
func (a *Applier) planSetElements(b *batch, s *Set, ks *nftables.Set, kernel []nftables.SetElement) error {
	var gone, came []Element
	current, err := decodeElements(s, kernel)
	flush := err != nil
	if flush {
		b.note("flushed and refilled set %s (%v)", s.Name, err)
		came = s.Elements
	} else {
		gone, came = diffElements(&Set{Name: s.Name, Key: s.Key, Data: s.Data, Interval: s.Interval, Elements: current}, s)
	}
	goneElems, err := encodeElements(s, gone)
	if err != nil {
		return err
	}
	cameElems, err := encodeElements(s, came)
	if err != nil {
		return err
	}
	b.add(func(c *nftables.Conn) error {
		if err := c.AddSet(ks, nil); err != nil {
			return err
		}
		if flush {
			c.FlushSet(ks)
		}
		return nil
	})
	b.addElements(ks, goneElems, true)
	b.addElements(ks, cameElems, false)
	return nil
}

// kernelChain is the netlink definition of a model chain. Base chains get
// policy accept, as nft gives them.
func kernelChain(table *nftables.Table, c *Chain) (*nftables.Chain, error) {
	kc := &nftables.Chain{Name: c.Name, Table: table}
	if c.Hook == nil {
		return kc, nil
	}
	hooks := map[string]*nftables.ChainHook{
		"prerouting": nftables.ChainHookPrerouting, "input": nftables.ChainHookInput,
		"forward": nftables.ChainHookForward, "output": nftables.ChainHookOutput,
		"postrouting": nftables.ChainHookPostrouting,
	}
	types := map[string]nftables.ChainType{"filter": nftables.ChainTypeFilter, "nat": nftables.ChainTypeNAT}
	hook, typ := hooks[c.Hook.Hook], types[c.Hook.Type]
	if hook == nil || typ == "" {
		return nil, fmt.Errorf("chain %s: type %q hook %q has no netlink encoding", c.Name, c.Hook.Type, c.Hook.Hook)
	}
	accept := nftables.ChainPolicyAccept
	kc.Hooknum, kc.Priority, kc.Type, kc.Policy = hook, nftables.ChainPriorityRef(nftables.ChainPriority(c.Hook.Priority)), typ, &accept
	return kc, nil
}

// sameChainDefinition reports whether the kernel's chain can be updated in
// place to want: same hook, priority and type (or both regular chains).
func sameChainDefinition(have, want *nftables.Chain) bool {
	if (have.Hooknum == nil) != (want.Hooknum == nil) {
		return false
	}
	if want.Hooknum == nil {
		return true
	}
	return *have.Hooknum == *want.Hooknum && have.Priority != nil && *have.Priority == *want.Priority &&
		have.Type == want.Type
}

// sameSetDefinition reports whether adding want over the kernel's set is a
// no-op: same flags, key and data. The kernel refuses anything else.
func sameSetDefinition(have, want *nftables.Set) bool {
	if have.IsMap != want.IsMap || have.Interval != want.Interval || have.Concatenation != want.Concatenation ||
		have.Constant || have.HasTimeout || have.Dynamic || have.Size != want.Size ||
		have.KeyType.GetNFTMagic() != want.KeyType.GetNFTMagic() || have.KeyType.Bytes != want.KeyType.Bytes {
		return false
	}
	if !want.IsMap {
		return true
	}
	if have.DataType.GetNFTMagic() != want.DataType.GetNFTMagic() {
		return false
	}
	// The kernel reports a verdict's size as that of struct nft_verdict.
	return want.DataType.GetNFTMagic() == nftables.TypeVerdict.GetNFTMagic() ||
		have.DataType.Bytes == want.DataType.Bytes
}

// setDefinitionString describes a kernel set for messages.
func setDefinitionString(s *nftables.Set) string {
	out := "type " + s.KeyType.Name
	if s.IsMap {
		out += " : " + s.DataType.Name
	}
	if s.Size > 0 {
		out += fmt.Sprintf(" size %d", s.Size)
	}
	if s.Interval {
		out += " flags interval"
	}
	return out
}
