package nft

import (
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/google/nftables"
	"golang.org/x/sys/unix"
)

// elementChunk is the most elements one add/delete-elements message
// carries. Larger messages overflow a 16-bit attribute length (the kernel
// then answers a misleading ENOENT); google/nftables master splits by size
// too, this keeps each message well inside it.
const elementChunk = 1000

// Applier programs a Ruleset into the kernel with google/nftables, each
// call one atomic netlink batch: the kernel applies all of it or none.
// It holds one lasting netlink connection; google/nftables grows the
// socket buffers to the size of each batch. Methods are safe for
// concurrent use (they are serialised).
type Applier struct {
	mu    sync.Mutex
	conn  *nftables.Conn
	dial  func() (*nftables.Conn, error)
	table *nftables.Table
	// noDestroy is learned on the first refused destroy: kernels before
	// 6.3 (Debian bookworm's 6.1) have no NFT_MSG_DESTROYSETELEM and
	// answer EINVAL; plain deletes are used from then on.
	noDestroy bool
	// Tests make a staged install (installStaged) happen, and in small
	// batches, with a small ruleset.
	testInstallMin, testInstallBatch int
}

// ApplierOption configures NewApplier.
type ApplierOption func(*applierConfig)

type applierConfig struct {
	netnsFd int
}

// WithNetNSFd makes the Applier program the network namespace that fd (an
// open /run/netns/<name> or /proc/<pid>/ns/net) refers to instead of the
// caller's. Tests use it to work in a throwaway namespace.
func WithNetNSFd(fd int) ApplierOption {
	return func(c *applierConfig) { c.netnsFd = fd }
}

// NewApplier opens the netlink connection.
func NewApplier(opts ...ApplierOption) (*Applier, error) {
	var cfg applierConfig
	for _, o := range opts {
		o(&cfg)
	}
	dial := func() (*nftables.Conn, error) {
		return nftables.New(nftables.AsLasting(), nftables.WithNetNSFd(cfg.netnsFd))
	}
	conn, err := dial()
	if err != nil {
		return nil, fmt.Errorf("open nftables netlink connection: %w", err)
	}
	return &Applier{conn: conn, dial: dial,
		table: &nftables.Table{Name: TableName, Family: nftables.TableFamilyIPv4}}, nil
}

// Close closes the netlink connection.
func (a *Applier) Close() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.conn.CloseLasting()
}

// Delete removes our whole table in one batch: every chain, rule, set and
// element, including the user chain and the administrator's rules in it.
// It is for `nftbridge` teardown and tests; a missing table is not an error.
func (a *Applier) Delete() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	b := &batch{}
	b.add(func(c *nftables.Conn) error { c.DestroyTable(a.table); return nil })
	if err := a.send(b, 0); err != nil {
		return fmt.Errorf("delete table ip %s: %w", a.table.Name, err)
	}
	return nil
}

// TableExists reports whether our table is present.
func (a *Applier) TableExists() (bool, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.tableExists()
}

func (a *Applier) tableExists() (bool, error) {
	_, err := a.conn.ListTableOfFamily(a.table.Name, a.table.Family)
	switch {
	case IsNotFound(err):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("look up table ip %s: %w", a.table.Name, err)
	}
	return true, nil
}

// IsNotFound reports whether err is the kernel saying that a table, chain,
// set or element does not exist (ENOENT).
func IsNotFound(err error) bool { return errors.Is(err, unix.ENOENT) }

// batch is one transaction, built completely before any of it is queued on
// the connection: an encoding error then never leaves half a batch queued.
type batch struct {
	ops []func(*nftables.Conn) error
	// plainDelete makes element removals plain deletes, which fail the
	// batch when an element is missing, instead of destroys.
	plainDelete bool
	hasDestroy  bool
	// notes say what the batch does beyond the ordinary, for errors.
	notes []string
}

func (b *batch) add(op func(*nftables.Conn) error) { b.ops = append(b.ops, op) }

func (b *batch) note(format string, args ...any) {
	b.notes = append(b.notes, fmt.Sprintf(format, args...))
}

// addElements queues element adds (or, destroy, deletes that do not fail
// when the element is missing) in chunks of elementChunk.
func (b *batch) addElements(ks *nftables.Set, elems []nftables.SetElement, destroy bool) {
	b.hasDestroy = b.hasDestroy || (destroy && len(elems) > 0)
	for start := 0; start < len(elems); start += elementChunk {
		chunk := elems[start:min(start+elementChunk, len(elems))]
		b.add(func(c *nftables.Conn) error {
			switch {
			case destroy && b.plainDelete:
				return c.SetDeleteElements(ks, chunk)
			case destroy:
				return c.SetDestroyElements(ks, chunk)
			}
			return c.SetAddElements(ks, chunk)
		})
	}
}

// send queues the batch and flushes it as one transaction. A non-zero
// genID makes the kernel refuse it (ERESTART) if the ruleset changed since
// that generation was read.
func (a *Applier) send(b *batch, genID uint32) error {
	b.plainDelete = a.noDestroy
	err := a.sendOnce(b, genID)
	if err != nil && b.hasDestroy && !a.noDestroy && errors.Is(err, unix.EINVAL) {
		// The whole batch was rolled back; say it again with deletes.
		a.noDestroy, b.plainDelete = true, true
		err = a.sendOnce(b, genID)
	}
	return err
}

func (a *Applier) sendOnce(b *batch, genID uint32) error {
	err := flushOn(a.conn, b, genID)
	if qe := (*queueError)(nil); errors.As(err, &qe) {
		return errors.Join(err, a.discard())
	}
	return err
}

// queueError is a batch that could not be queued: the connection may hold
// part of it, and must be dropped or have its queue discarded.
type queueError struct{ err error }

func (e *queueError) Error() string { return "queue batch: " + e.err.Error() }
func (e *queueError) Unwrap() error { return e.err }

// flushOn queues b on conn and flushes it as one transaction. A non-zero
// genID makes the kernel refuse it (ERESTART) if the ruleset changed since
// that generation was read.
func flushOn(conn *nftables.Conn, b *batch, genID uint32) error {
	for _, op := range b.ops {
		if err := op(conn); err != nil {
			return &queueError{err}
		}
	}
	var err error
	if genID != 0 {
		err = conn.FlushWithGenID(genID)
	} else {
		err = conn.Flush()
	}
	if err == nil {
		return nil
	}
	err = fmt.Errorf("batch rolled back, nothing changed: %w", err)
	if hint := batchErrorHint(err); hint != "" {
		err = fmt.Errorf("%w (%s)", err, hint)
	}
	if len(b.notes) > 0 {
		err = fmt.Errorf("%w; the batch also: %s", err, strings.Join(b.notes, "; "))
	}
	return err
}

// batchErrorHint explains the usual causes of a refused batch. The kernel
// says only an errno; google/nftables adds the type of the message that
// failed (NFT_MSG_NEWSETELEM…), which is all there is to go on.
func batchErrorHint(err error) string {
	elements := strings.Contains(err.Error(), "SETELEM")
	switch {
	case errors.Is(err, unix.EEXIST) && elements:
		return "an element overlaps an element of its set, or has the key of one with other data"
	case errors.Is(err, unix.EEXIST):
		return "an object of our table exists with a definition that cannot be changed in place; " +
			"Delete and Reconcile rebuild the table"
	case errors.Is(err, unix.EBUSY):
		return "something to be deleted or re-created is still used, e.g. by a rule in the user chain"
	case errors.Is(err, unix.ENOENT) && elements:
		return "our table or one of its sets is missing; Reconcile rebuilds it"
	case errors.Is(err, unix.ENOENT):
		return "a rule refers to a chain or set that does not exist"
	case errors.Is(err, unix.ENFILE) && elements:
		return fmt.Sprintf("a set is full: nftbridge holds at most %d endpoints and %d published ports",
			MaxEndpoints, MaxPublishedPorts)
	}
	return ""
}

// discard drops whatever is queued on the connection by replacing it:
// google/nftables has no way to empty its queue without sending it.
func (a *Applier) discard() error {
	conn, err := a.dial()
	if err != nil {
		// Keep the old connection but poison its queue: an invalid set
		// sticks an error to it, and the next Flush returns that error
		// and empties the queue without sending anything.
		_ = a.conn.AddSet(&nftables.Set{Table: a.table, Anonymous: true}, nil)
		_ = a.conn.Flush()
		return fmt.Errorf("reopen nftables netlink connection: %w", err)
	}
	_ = a.conn.CloseLasting()
	a.conn = conn
	return nil
}
