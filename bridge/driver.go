package bridge

import (
	"fmt"
	"maps"
	"net"
	"net/netip"
	"slices"

	"github.com/nftbridge/nftbridge/bridge/link"
	"github.com/nftbridge/nftbridge/bridge/store"
	"github.com/nftbridge/nftbridge/ports"
)

// What Docker's remote network driver needs beyond the CLI's operations.
// Docker splits an attachment in steps: CreateEndpoint (address chosen by
// Docker's IPAM) → Join (the interface, which Docker moves into the
// container and configures itself) → ProgramExternalConnectivity (ports),
// and the reverse on the way out. A Docker endpoint is recorded with
// NetNS "": its peer is created in our namespace for Docker to move.

// DriverEndpointOptions describe an endpoint Docker creates.
type DriverEndpointOptions struct {
	// Network is Docker's network ID (or any reference findNetwork takes).
	Network string
	// ID is Docker's endpoint ID; the endpoint is named "docker-" + its
	// first 12 characters.
	ID string
	// Addr is the address Docker's IPAM chose, with the network's prefix
	// length, e.g. 172.18.0.2/16.
	Addr netip.Prefix
	// MAC is the address Docker asked for (--mac-address), if any.
	MAC string
}

// DriverEndpointName is the store name of the endpoint with Docker ID id.
func DriverEndpointName(id string) string { return "docker-" + id[:min(12, len(id))] }

// CreateDriverEndpoint records a Docker endpoint with exactly Docker's
// address and ID, and adds its elements. No interface is created yet: that
// is JoinEndpoint's work.
//
// Docker forgets endpoints without telling the driver when dockerd dies with
// containers running, or when the host reboots (it cleans up before the
// plugin is activated). Their records would hold addresses and host ports
// Docker hands out again, so they are removed here, in the same step, and
// their names returned: a Docker endpoint holding the address Docker's IPAM
// just chose (IPAM never hands out an address twice), and a Docker endpoint
// with published ports whose veth is gone (its container's namespace died).
func (e *Engine) CreateDriverEndpoint(opts DriverEndpointOptions) (created *store.Endpoint, pruned []string, err error) {
	if err := checkDriverEndpoint(opts); err != nil {
		return nil, nil, err
	}
	var staleVeths []string
	err = e.update(func(st *store.State) (func(), error) {
		n, err := findNetwork(st, opts.Network)
		if err != nil {
			return nil, err
		}
		if bits := n.Subnet.Bits(); opts.Addr.Bits() != bits {
			return nil, fmt.Errorf("address %s does not have network %q's prefix length /%d (subnet %s)", opts.Addr, n.Name, bits, n.Subnet)
		}
		stale, err := e.staleDockerEndpoints(st, n, opts.Addr.Addr())
		if err != nil {
			return nil, err
		}
		for _, old := range stale {
			delete(st.Endpoints, old.Name)
			pruned, staleVeths = append(pruned, old.Name), append(staleVeths, old.HostVeth)
		}
		ep, _, err := newEndpoint(st, EndpointOptions{Network: n.Name, Name: DriverEndpointName(opts.ID), ID: opts.ID, Addr: opts.Addr.Addr()}, e.cfg.Now().UTC())
		if err != nil {
			return nil, err
		}
		ep.MAC = opts.MAC
		st.Endpoints[ep.Name] = ep
		created = ep.Clone()
		return nil, nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("create endpoint %s on network %s: %w", opts.ID, opts.Network, err)
	}
	for _, veth := range staleVeths {
		if err := e.cfg.Links.DeleteVeth(veth); err != nil {
			return created, pruned, fmt.Errorf("endpoint %s created, but the stale veth %q: %w", opts.ID, veth, err)
		}
	}
	return created, pruned, nil
}

func checkDriverEndpoint(opts DriverEndpointOptions) error {
	if !opts.Addr.IsValid() || !opts.Addr.Addr().Is4() {
		return fmt.Errorf("create endpoint %s: address %s is not an IPv4 address/prefix length such as 172.18.0.2/16", opts.ID, opts.Addr)
	}
	if opts.ID == "" {
		return fmt.Errorf("create endpoint on network %q: an endpoint ID is required", opts.Network)
	}
	if opts.MAC != "" {
		if _, err := net.ParseMAC(opts.MAC); err != nil {
			return fmt.Errorf("create endpoint %s: invalid MAC address %q", opts.ID, opts.MAC)
		}
	}
	return nil
}

// staleDockerEndpoints finds the Docker endpoints Docker has forgotten (see
// CreateDriverEndpoint). Endpoints added with `endpoint add` are never
// stale: Docker knows nothing of them.
func (e *Engine) staleDockerEndpoints(st *store.State, n *store.Network, addr netip.Addr) ([]*store.Endpoint, error) {
	var stale []*store.Endpoint
	for _, name := range slices.Sorted(maps.Keys(st.Endpoints)) {
		ep := st.Endpoints[name]
		switch {
		case ep.NetNS != "":
		case ep.Network == n.Name && ep.Addr == addr:
			stale = append(stale, ep)
		case len(ep.Ports) > 0:
			exists, err := e.cfg.Links.LinkExists(ep.HostVeth)
			if err != nil {
				return nil, err
			}
			if !exists {
				stale = append(stale, ep)
			}
		}
	}
	return stale, nil
}

// JoinEndpoint creates the veth pair of a Docker endpoint: the host end on
// the network's bridge, the peer left unconfigured in our namespace under
// the returned endpoint's PeerName for Docker to move into the container.
// It returns the endpoint and its network.
func (e *Engine) JoinEndpoint(ref string) (*store.Endpoint, *store.Network, error) {
	var ep *store.Endpoint
	var n *store.Network
	err := e.update(func(st *store.State) (func(), error) {
		found, network, err := driverEndpoint(st, ref)
		if err != nil {
			return nil, err
		}
		ep, n = found.Clone(), network.Clone()
		// A Join repeated after a failure (or a daemon restart) starts over.
		if err := e.cfg.Links.DeleteVeth(ep.HostVeth); err != nil {
			return nil, err
		}
		cfg := link.VethConfig{Bridge: n.Bridge, HostName: ep.HostVeth, PeerName: ep.PeerName, MTU: n.MTU, Hairpin: true}
		if ep.MAC != "" {
			cfg.MAC, _ = net.ParseMAC(ep.MAC) // checked by CreateDriverEndpoint
		}
		if err := e.cfg.Links.CreateVeth(cfg); err != nil {
			return nil, err
		}
		return func() { _ = e.cfg.Links.DeleteVeth(ep.HostVeth) }, nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("join endpoint %s: %w", ref, err)
	}
	return ep, n, nil
}

// LeaveEndpoint deletes a Docker endpoint's veth pair (wherever Docker put
// the peer). The endpoint, its address and its ports stay recorded until
// RemoveEndpoint. A veth already gone is not an error.
func (e *Engine) LeaveEndpoint(ref string) error {
	err := e.update(func(st *store.State) (func(), error) {
		ep, _, err := driverEndpoint(st, ref)
		if err != nil {
			return nil, err
		}
		return nil, e.cfg.Links.DeleteVeth(ep.HostVeth)
	})
	if err != nil {
		return fmt.Errorf("leave endpoint %s: %w", ref, err)
	}
	return nil
}

// SetEndpointPorts replaces every published port of an endpoint with specs
// (none: unpublish all). It is idempotent, so Docker may repeat
// ProgramExternalConnectivity. Host ports left open are picked as Publish
// picks them; a conflict names the endpoint holding the port. All specs are
// published, or the endpoint keeps the ports it had.
func (e *Engine) SetEndpointPorts(ref string, specs []ports.Spec) ([]ports.Binding, error) {
	var added []ports.Binding
	err := e.updateEndpoint(ref, func(tx *store.Tx, ep *store.Endpoint, n *store.Network) error {
		ep.Ports = nil
		var err error
		added, err = addPorts(tx, ep, n, specs, ep.Name)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("publish on endpoint %q: %w", ref, err)
	}
	return added, nil
}

// DriverEndpoint returns a copy of an endpoint and its network, looked up by
// Docker's endpoint ID (or name).
func (e *Engine) DriverEndpoint(ref string) (*store.Endpoint, *store.Network, error) {
	st, err := e.State()
	if err != nil {
		return nil, nil, err
	}
	ep, err := findEndpoint(st, ref)
	if err != nil {
		return nil, nil, err
	}
	n := st.Networks[ep.Network]
	if n == nil {
		return nil, nil, fmt.Errorf("endpoint %q: network %q is missing from the store", ep.Name, ep.Network)
	}
	return ep.Clone(), n.Clone(), nil
}

// driverEndpoint finds a Docker endpoint (one whose peer Docker moves) and
// its network; a CLI endpoint's veth is never Docker's to create or delete.
func driverEndpoint(st *store.State, ref string) (*store.Endpoint, *store.Network, error) {
	ep, err := findEndpoint(st, ref)
	if err != nil {
		return nil, nil, err
	}
	if ep.NetNS != "" {
		return nil, nil, fmt.Errorf("endpoint %q was added with `endpoint add` (namespace %q), not by Docker", ep.Name, ep.NetNS)
	}
	n := st.Networks[ep.Network]
	if n == nil {
		return nil, nil, fmt.Errorf("endpoint %q: network %q is missing from the store", ep.Name, ep.Network)
	}
	return ep, n, nil
}
