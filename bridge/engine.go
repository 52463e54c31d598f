// Package bridge is nftbridge's engine: it owns networks, endpoints and
// published ports, and keeps the store, the links and the nftables table in
// step. Every operation is one store transaction and one netlink batch; a
// failure at any step undoes the steps before it.
package bridge

import (
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/nftbridge/nftbridge/bridge/link"
	"github.com/nftbridge/nftbridge/bridge/store"
	"github.com/nftbridge/nftbridge/nft"
	"github.com/nftbridge/nftbridge/ports"
)

// Firewall programs compiled rulesets; *nft.Applier is the real one.
type Firewall interface {
	Reconcile(rs *nft.Ruleset) error
	Update(old, new *nft.Ruleset) error
	TableExists() (bool, error)
}

// Links is the kernel plumbing the engine needs; *link.Manager is the real one.
type Links interface {
	EnsureBridge(name string, addr netip.Prefix, mtu int) error
	// CreateBridges creates missing bridges as EnsureBridge and
	// EnableRouteLocalnet would leave them, all at once; a failure is a
	// *link.BridgeError naming the bridge.
	CreateBridges(specs []link.BridgeSpec) (created []string, err error)
	DeleteBridge(name string) error
	LinkExists(name string) (bool, error)
	CreateVeth(cfg link.VethConfig) error
	AttachVeth(hostName, bridge string, hairpin bool) error
	DeleteVeth(hostName string) error
	NetNSExists(spec string) error
	EnableRouteLocalnet(bridge string) error
	// EnableBridgeNetfilter sends traffic between one bridge's ports
	// through the forward chain (networks with ICC off need it).
	EnableBridgeNetfilter(bridge string) error
	FlushConntrack(proto uint8, hostPort uint16, containerAddr netip.Addr) (uint, error)
	// ForgetAddress deletes the conntrack entries of every connection
	// from or to an address.
	ForgetAddress(addr netip.Addr) (uint, error)
	Inventory() (link.Inventory, error)
}

// Host is what the engine asks of the host once per network change: IP
// forwarding. It reports what it changed.
type Host interface {
	Prepare() (notes []string, err error)
}

// Config wires an Engine. Every field is required except Now and IDs.
type Config struct {
	StorePath string
	LockWait  time.Duration
	Firewall  Firewall
	Links     Links
	Host      Host
	Now       func() time.Time
	// IDs returns a fresh random hex identifier (64 characters).
	IDs func() string
}

// Engine carries out operations. It keeps no state of its own between calls:
// the store is the truth, opened for each operation.
type Engine struct {
	cfg Config
}

// New returns an engine.
func New(cfg Config) (*Engine, error) {
	if cfg.StorePath == "" || cfg.Firewall == nil || cfg.Links == nil || cfg.Host == nil {
		return nil, errors.New("bridge.New: StorePath, Firewall, Links and Host are required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.IDs == nil {
		cfg.IDs = randomID
	}
	if cfg.LockWait == 0 {
		cfg.LockWait = 2 * time.Minute
	}
	return &Engine{cfg: cfg}, nil
}

// State returns a snapshot of the stored state.
func (e *Engine) State() (*store.State, error) {
	return store.Snapshot(e.cfg.StorePath, e.cfg.LockWait)
}

// update runs fn inside one store transaction. fn changes the state and may
// do link work, returning an undo for it; then the firewall is brought from
// the old state to the new one. If the firewall or the commit fails, the undo
// runs and the store is left as it was.
func (e *Engine) update(fn func(st *store.State) (undo func(), err error)) error {
	s, err := store.Open(e.cfg.StorePath, e.cfg.LockWait)
	if err != nil {
		return err
	}
	defer s.Close()
	var undo func()
	err = s.Update(func(st *store.State) error {
		old := st.Clone()
		var ferr error
		if undo, ferr = fn(st); ferr != nil {
			return ferr
		}
		if ferr = e.program(old, st); ferr != nil {
			return ferr
		}
		return nil
	})
	if err != nil && undo != nil {
		undo()
	}
	return err
}

// program brings the kernel table from old to next: element changes only,
// or a full reconcile when our table is missing (a flushed ruleset).
func (e *Engine) program(old, next *store.State) error {
	oldRS, err := Compile(old)
	if err != nil {
		return fmt.Errorf("compile current state: %w", err)
	}
	nextRS, err := Compile(next)
	if err != nil {
		return fmt.Errorf("compile new state: %w", err)
	}
	exists, err := e.cfg.Firewall.TableExists()
	if err != nil {
		return err
	}
	if !exists {
		return e.cfg.Firewall.Reconcile(nextRS)
	}
	err = e.cfg.Firewall.Update(oldRS, nextRS)
	if needsReconcile(err) {
		return e.cfg.Firewall.Reconcile(nextRS)
	}
	return err
}

// needsReconcile: the table changed shape (an upgrade), or an element we
// meant to delete is missing (someone edited our sets; on kernels before
// 6.3 deletes cannot be made idempotent). The failed batch changed nothing;
// a full reconcile reads the kernel and repairs both.
func needsReconcile(err error) bool {
	return errors.Is(err, nft.ErrStructureChanged) || nft.IsNotFound(err)
}

// Compile turns stored state into our table.
func Compile(st *store.State) (*nft.Ruleset, error) {
	return nft.Compile(Desired(st))
}

// Desired is the nft view of the stored state, in name order.
func Desired(st *store.State) nft.Desired {
	d := nft.Desired{Networks: make([]nft.Network, 0, len(st.Networks)), Endpoints: make([]nft.Endpoint, 0, len(st.Endpoints))}
	published := 0
	for _, ep := range st.Endpoints {
		published += len(ep.Ports)
	}
	d.Ports = make([]nft.Port, 0, published)
	for _, name := range slices.Sorted(maps.Keys(st.Networks)) {
		n := st.Networks[name]
		d.Networks = append(d.Networks, nft.Network{Bridge: n.Bridge, Subnet: n.Subnet,
			ICC: n.ICC, Internal: n.Internal, Masquerade: n.Masquerade})
	}
	for _, name := range slices.Sorted(maps.Keys(st.Endpoints)) {
		ep := st.Endpoints[name]
		n := st.Networks[ep.Network]
		if n == nil || !ep.Addr.IsValid() {
			continue
		}
		d.Endpoints = append(d.Endpoints, nft.Endpoint{Bridge: n.Bridge, Addr: ep.Addr})
		for _, p := range ep.Ports {
			proto, _ := ports.ParseProto(p.Proto)
			d.Ports = append(d.Ports, nft.Port{Proto: uint8(proto), HostIP: p.HostIP,
				HostPort: p.HostPort, Addr: ep.Addr, ContainerPort: p.ContainerPort})
		}
	}
	return d
}

// NotFoundError is returned for an unknown network or endpoint.
type NotFoundError struct {
	Kind, Name string
}

func (e *NotFoundError) Error() string {
	return fmt.Sprintf("%s %q not found", e.Kind, e.Name)
}

// IsNotFound reports whether err says a network or endpoint does not exist.
func IsNotFound(err error) bool {
	var nf *NotFoundError
	return errors.As(err, &nf)
}

// findNetwork looks a network up by name, then by full or unique short ID.
func findNetwork(st *store.State, ref string) (*store.Network, error) {
	if n, ok := st.Networks[ref]; ok {
		return n, nil
	}
	var found *store.Network
	for _, n := range st.Networks {
		if n.ID != "" && len(ref) >= 6 && strings.HasPrefix(n.ID, ref) {
			if found != nil {
				return nil, fmt.Errorf("network ID prefix %q is ambiguous", ref)
			}
			found = n
		}
	}
	if found == nil {
		return nil, &NotFoundError{Kind: "network", Name: ref}
	}
	return found, nil
}

// findEndpoint looks an endpoint up by name, then by full ID.
func findEndpoint(st *store.State, ref string) (*store.Endpoint, error) {
	if ep, ok := st.Endpoints[ref]; ok {
		return ep, nil
	}
	for _, ep := range st.Endpoints {
		if ep.ID != "" && ep.ID == ref {
			return ep, nil
		}
	}
	return nil, &NotFoundError{Kind: "endpoint", Name: ref}
}

// forgetConnections drops the conntrack entries of ports that are no longer
// published, so live flows stop being translated. Best effort: the entries
// expire by themselves and the firewall is already right without them.
func (e *Engine) forgetConnections(addr netip.Addr, gone []store.Port) {
	for _, p := range gone {
		proto, err := ports.ParseProto(p.Proto)
		if err == nil {
			_, _ = e.cfg.Links.FlushConntrack(uint8(proto), p.HostPort, addr)
		}
	}
}

// forgetEndpoint drops the conntrack entries of every connection from or to
// an endpoint that is gone (published ports included), so none outlives it.
// Best effort, like forgetConnections.
func (e *Engine) forgetEndpoint(addr netip.Addr) {
	_, _ = e.cfg.Links.ForgetAddress(addr)
}

// updateEndpoint is the fast path for operations on one endpoint's ports:
// one transaction that reads only that endpoint and its network, and a
// netlink batch of that endpoint's element changes. Its cost does not grow
// with the number of networks, endpoints or ports.
func (e *Engine) updateEndpoint(ref string, fn func(tx *store.Tx, ep *store.Endpoint, n *store.Network) error) error {
	s, err := store.Open(e.cfg.StorePath, e.cfg.LockWait)
	if err != nil {
		return err
	}
	defer s.Close()
	return s.UpdateTx(func(tx *store.Tx) error {
		ep, err := tx.Endpoint(ref)
		if err == nil && ep == nil {
			ep, err = tx.EndpointByID(ref)
		}
		if err != nil {
			return err
		}
		if ep == nil {
			return &NotFoundError{Kind: "endpoint", Name: ref}
		}
		n, err := tx.Network(ep.Network)
		if err != nil {
			return err
		}
		if n == nil {
			return fmt.Errorf("endpoint %q: network %q is missing from the store", ep.Name, ep.Network)
		}
		old := ep.Clone()
		if err := fn(tx, ep, n); err != nil {
			return err
		}
		if err := tx.PutEndpoint(ep); err != nil {
			return err
		}
		return e.programSlice(tx, slice(n, old), slice(n, ep))
	})
}

// slice is the part of the state one endpoint operation touches. Elements
// of different networks and endpoints never coincide, so compiling the
// slice before and after gives exactly the elements that change.
func slice(n *store.Network, ep *store.Endpoint) *store.State {
	st := store.NewState()
	st.Networks[n.Name] = n
	st.Endpoints[ep.Name] = ep
	return st
}

// programSlice applies the element difference between two slices, or
// reconciles the whole state when our table is missing or changed shape.
func (e *Engine) programSlice(tx *store.Tx, old, next *store.State) error {
	exists, err := e.cfg.Firewall.TableExists()
	if err != nil {
		return err
	}
	if exists {
		oldRS, err := Compile(old)
		if err != nil {
			return err
		}
		nextRS, err := Compile(next)
		if err != nil {
			return err
		}
		if err = e.cfg.Firewall.Update(oldRS, nextRS); !needsReconcile(err) {
			return err
		}
	}
	full, err := tx.State()
	if err != nil {
		return err
	}
	rs, err := Compile(full)
	if err != nil {
		return err
	}
	return e.cfg.Firewall.Reconcile(rs)
}
