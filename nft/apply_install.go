package nft

import (
	"errors"
	"fmt"
	"sync"

	"github.com/google/nftables"
)

// A restore after a reboot or an `nft flush ruleset` creates the whole
// table: 34,000 elements at 1,000 networks and 10,000 ports. In one batch
// the kernel starts only once every message is marshalled, and we wait
// while it works. installStaged splits that work so the two overlap.
const (
	// installStagedMin is the element count from which a new table is
	// installed in stages; below it one batch is as fast.
	installStagedMin = 8192
	// installBatch is about how many elements one batch of a staged
	// install carries: big enough that a batch's fixed cost is small,
	// small enough that the kernel has the next one ready to work on.
	installBatch = 4096
	// installSenders marshal and send element batches side by side: one
	// marshals while the kernel works on the other's batch (it takes
	// them one at a time).
	installSenders = 2
)

// installStaged creates our table when it does not exist, in three stages:
//
//  1. the table, every set (empty) and every chain, with the rules of the
//     regular chains; the base chains are empty, so with their policy
//     accept they pass every packet as if they were not there. The batch
//     is refused (ERESTART) if the ruleset changed since generation genID;
//  2. the elements, in batches of about installBatch, sent side by side;
//  3. the rules of the base chains.
//
// Our table decides nothing about a packet before a base chain has rules,
// and they all come in the last batch, onto complete sets: the table starts
// filtering all at once, as with a single batch. If a batch fails, the
// table (which did not exist) is deleted again, also when an element
// cannot be encoded (those are encoded while the kernel works on the
// first batch; the rules are encoded before anything is sent). A process
// killed between the stages leaves a table whose base chains are empty,
// which passes everything as no table did; the next Reconcile finds the
// table and completes it in one batch.
func (a *Applier) installStaged(rs *Ruleset, genID uint32) error {
	skeleton, hooks := &batch{}, &batch{}
	stage := func(c *Chain) *batch {
		if c.Hook != nil {
			return hooks
		}
		return skeleton
	}
	skeleton.add(func(c *nftables.Conn) error { c.AddTable(a.table); return nil })
	sets, err := kernelSets(a.table, rs.Sets)
	if err != nil {
		return err
	}
	all := make([]bool, len(rs.Sets))
	for i, ks := range sets {
		all[i] = true
		skeleton.add(func(c *nftables.Conn) error { return c.AddSet(ks, nil) })
	}
	// Every chain exists before any rule, which may jump to a later one,
	// and in the order of rs.Chains, which is the order nft lists them in.
	// A base chain without rules, policy accept, passes every packet as if
	// it were not there.
	kernelChains := make([]*nftables.Chain, len(rs.Chains))
	for i, c := range rs.Chains {
		kc, err := kernelChain(a.table, c)
		if err != nil {
			return err
		}
		kernelChains[i] = kc
		skeleton.add(func(conn *nftables.Conn) error { conn.AddChain(kc); return nil })
	}
	rules := newRuleEncoder(a.table, rs)
	for i, c := range rs.Chains {
		if c.UserOwned {
			continue
		}
		for _, r := range c.Rules {
			er, err := rules.encodeRule(kernelChains[i], r)
			if err != nil {
				return err
			}
			stage(c).add(er.queue)
		}
	}
	// The elements are encoded while the kernel creates the sets: their
	// fixed-size hash tables are 7 MiB of buckets to allocate and clear.
	type encodedSets struct {
		elems [][]nftables.SetElement
		err   error
	}
	done := make(chan encodedSets, 1)
	go func() {
		elems, err := encodeSets(rs.Sets, all)
		done <- encodedSets{elems, err}
	}()
	if err := a.send(skeleton, genID); err != nil {
		<-done
		return err // nothing was created; ERESTART makes Reconcile retry
	}
	enc := <-done
	if enc.err != nil {
		return a.uninstall(enc.err)
	}
	batches := elementBatches(rs.Sets, sets, enc.elems, a.installBatch())
	if err := a.sendElementBatches(batches); err != nil {
		return a.uninstall(fmt.Errorf("elements: %w", err))
	}
	if err := a.send(hooks, 0); err != nil {
		return a.uninstall(fmt.Errorf("base chains: %w", err))
	}
	return nil
}

func (a *Applier) installBatch() int {
	if a.testInstallBatch > 0 {
		return a.testInstallBatch
	}
	return installBatch
}

func (a *Applier) installStagedMin() int {
	if a.testInstallMin > 0 {
		return a.testInstallMin
	}
	return installStagedMin
}

// elementBatches groups the elements of every set into batches of about
// size elements. The elements of an interval set stay in one batch: a
// range is two elements (its start and its end) that the kernel checks as
// a pair.
func elementBatches(sets []*Set, ksets []*nftables.Set, encoded [][]nftables.SetElement, size int) []*batch {
	var out []*batch
	cur, n := &batch{}, 0
	flush := func() {
		if len(cur.ops) > 0 {
			out = append(out, cur)
		}
		cur, n = &batch{}, 0
	}
	for i, s := range sets {
		elems := encoded[i]
		for len(elems) > 0 {
			take := min(len(elems), max(size-n, 1))
			if s.Interval {
				take = len(elems)
			}
			cur.addElements(ksets[i], elems[:take], false)
			elems, n = elems[take:], n+take
			if n >= size {
				flush()
			}
		}
	}
	flush()
	return out
}

// sendElementBatches sends the batches, each one transaction, from
// installSenders connections of their own side by side. It returns the
// first error; the other senders stop at their next batch.
func (a *Applier) sendElementBatches(batches []*batch) error {
	queue := make(chan *batch)
	var (
		mu    sync.Mutex
		first error
	)
	failed := func() bool { mu.Lock(); defer mu.Unlock(); return first != nil }
	fail := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		if first == nil {
			first = err
		}
	}
	conns := make([]*nftables.Conn, 0, installSenders)
	for range min(installSenders, len(batches)) {
		conn, err := a.dial()
		if err != nil {
			for _, c := range conns {
				c.CloseLasting()
			}
			return fmt.Errorf("open nftables netlink connection: %w", err)
		}
		conns = append(conns, conn)
	}
	var wg sync.WaitGroup
	for _, conn := range conns {
		wg.Go(func() {
			defer conn.CloseLasting()
			for b := range queue {
				if failed() {
					continue
				}
				if err := flushOn(conn, b, 0); err != nil {
					fail(err)
				}
			}
		})
	}
	for _, b := range batches {
		if failed() {
			break
		}
		queue <- b
	}
	close(queue)
	wg.Wait()
	return first
}

// uninstall deletes the table a failed staged install left: it did not
// exist before, so that leaves the kernel as it was.
func (a *Applier) uninstall(cause error) error {
	b := &batch{}
	b.add(func(c *nftables.Conn) error { c.DelTable(a.table); return nil })
	if err := a.send(b, 0); err != nil && !IsNotFound(err) {
		return errors.Join(fmt.Errorf("install in stages: %w", cause),
			fmt.Errorf("removing the half-installed table failed too (run `nft delete table ip %s`): %w", a.table.Name, err))
	}
	return fmt.Errorf("install in stages: %w; the table was removed again, nothing changed", cause)
}
