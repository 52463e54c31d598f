package bridge

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
	"time"

	"github.com/nftbridge/nftbridge/bridge/ipam"
	"github.com/nftbridge/nftbridge/bridge/link"
	"github.com/nftbridge/nftbridge/bridge/store"
)

// EndpointOptions are the knobs of `endpoint add`.
type EndpointOptions struct {
	Network string
	// Name defaults to the namespace's name when NetNS is a bare name.
	Name string
	// ID is set by the Docker driver (Docker's endpoint ID); random otherwise.
	ID   string
	Addr netip.Addr // default: the lowest free address
	// NetNS is a name under /run/netns or a path such as /proc/PID/ns/net.
	// Empty leaves the peer in the host namespace for Docker to move (driver
	// mode); its name is returned in Endpoint.PeerName.
	NetNS  string
	IfName string // name inside the namespace, default eth0
}

// AddEndpoint creates a veth pair from the network's bridge into the
// namespace, addresses it and adds its elements.
func (e *Engine) AddEndpoint(opts EndpointOptions) (*store.Endpoint, error) {
	if opts.Name == "" && opts.NetNS != "" && !strings.Contains(opts.NetNS, "/") {
		opts.Name = opts.NetNS
	}
	if opts.Name == "" {
		return nil, fmt.Errorf("endpoint for namespace %q needs a --name", opts.NetNS)
	}
	if err := validName("endpoint", opts.Name); err != nil {
		return nil, err
	}
	if opts.Addr.IsValid() && !opts.Addr.Is4() {
		return nil, fmt.Errorf("invalid endpoint address %s: only IPv4 is supported", opts.Addr)
	}
	if opts.ID == "" {
		opts.ID = e.cfg.IDs()
	}
	if opts.NetNS != "" {
		if err := e.cfg.Links.NetNSExists(opts.NetNS); err != nil {
			return nil, fmt.Errorf("add endpoint %q: %w", opts.Name, err)
		}
	}
	var created *store.Endpoint
	err := e.update(func(st *store.State) (func(), error) {
		ep, n, err := newEndpoint(st, opts, e.cfg.Now().UTC())
		if err != nil {
			return nil, err
		}
		cfg := link.VethConfig{
			Bridge: n.Bridge, HostName: ep.HostVeth, PeerName: ep.PeerName, NetNS: opts.NetNS,
			IfName: opts.IfName, Addr: netip.PrefixFrom(ep.Addr, n.Subnet.Bits()),
			Gateway: defaultRoute(n), MTU: n.MTU, Hairpin: true,
		}
		if err := e.cfg.Links.CreateVeth(cfg); err != nil {
			return nil, err
		}
		st.Endpoints[ep.Name] = ep
		created = ep.Clone()
		return func() { _ = e.cfg.Links.DeleteVeth(ep.HostVeth) }, nil
	})
	if err != nil {
		return nil, fmt.Errorf("add endpoint %q to network %q: %w", opts.Name, opts.Network, err)
	}
	return created, nil
}

func newEndpoint(st *store.State, opts EndpointOptions, now time.Time) (*store.Endpoint, *store.Network, error) {
	n, err := findNetwork(st, opts.Network)
	if err != nil {
		return nil, nil, err
	}
	if _, ok := st.Endpoints[opts.Name]; ok {
		return nil, nil, fmt.Errorf("endpoint name %q is already in use", opts.Name)
	}
	var used []netip.Addr
	for _, ep := range st.Endpoints {
		if ep.ID == opts.ID {
			return nil, nil, fmt.Errorf("endpoint ID %s is already used by %q", opts.ID, ep.Name)
		}
		if opts.NetNS != "" && ep.NetNS != "" && ep.Network == n.Name && samePath(ep.NetNS, opts.NetNS) {
			return nil, nil, fmt.Errorf("namespace %q is already attached to network %q as endpoint %q", opts.NetNS, n.Name, ep.Name)
		}
		if ep.Network == n.Name {
			used = append(used, ep.Addr)
		}
	}
	addr, err := ipam.AllocateAddr(n.Subnet, n.Gateway, used, opts.Addr)
	if err != nil {
		return nil, nil, err
	}
	suffix := opts.ID[:min(10, len(opts.ID))]
	ep := &store.Endpoint{
		Name: opts.Name, ID: opts.ID, Network: n.Name, Addr: addr, NetNS: opts.NetNS,
		HostVeth: "nbv" + suffix, PeerName: "nbp" + suffix, Created: now,
	}
	return ep, n, nil
}

// defaultRoute is the gateway a container gets as its default route: none
// on an internal network, as Docker does — there is nowhere to go.
func defaultRoute(n *store.Network) netip.Addr {
	if n.Internal {
		return netip.Addr{}
	}
	return n.Gateway
}

func samePath(a, b string) bool { return filepath.Clean(a) == filepath.Clean(b) }

// RemoveEndpoint removes an endpoint's elements and published ports, then
// its veth pair.
func (e *Engine) RemoveEndpoint(ref string) error {
	var veth string
	var gone *store.Endpoint
	err := e.update(func(st *store.State) (func(), error) {
		ep, err := findEndpoint(st, ref)
		if err != nil {
			return nil, err
		}
		veth, gone = ep.HostVeth, ep.Clone()
		delete(st.Endpoints, ep.Name)
		return nil, nil
	})
	if err != nil {
		return fmt.Errorf("remove endpoint %q: %w", ref, err)
	}
	// Connections are forgotten once the veth is gone, so that the
	// container cannot start another one in between.
	defer e.forgetEndpoint(gone.Addr)
	if err := e.cfg.Links.DeleteVeth(veth); err != nil {
		return fmt.Errorf("endpoint %q removed, but its veth %q: %w", ref, veth, err)
	}
	return nil
}
