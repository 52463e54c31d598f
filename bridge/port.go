package bridge

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"

	"github.com/nftbridge/nftbridge/bridge/store"
	"github.com/nftbridge/nftbridge/ports"
)

// PublishedPort is one binding with the endpoint that holds it.
type PublishedPort struct {
	Endpoint string
	Network  string
	Addr     netip.Addr
	Binding  ports.Binding
}

// Publish publishes ports of an endpoint. Host ports left open are picked
// from the ephemeral range; a host port already published (same protocol,
// overlapping host address) is refused naming the endpoint holding it. All
// specs are published, or none.
func (e *Engine) Publish(ref string, specs []ports.Spec) ([]ports.Binding, error) {
	if len(specs) == 0 {
		return nil, errors.New("publish: no port spec given")
	}
	var added []ports.Binding
	err := e.update(func(st *store.State) (func(), error) {
		ep, err := findEndpoint(st, ref)
		if err != nil {
			return nil, err
		}
		n := st.Networks[ep.Network]
		if n == nil {
			return nil, fmt.Errorf("endpoint %q: network %q is missing from the store", ep.Name, ep.Network)
		}
		if n.Internal {
			return nil, fmt.Errorf("network %q is internal: ports cannot be published on it", n.Name)
		}
		owners := publishedPorts(st)
		taken := make([]ports.Binding, len(owners))
		for i, p := range owners {
			taken[i] = p.Binding
		}
		for _, spec := range specs {
			if !spec.HostIP.IsValid() && n.HostIP.IsValid() {
				spec.HostIP = n.HostIP
			}
			bindings, err := ports.Expand(spec, taken, ports.DefaultEphemeral())
			if err != nil {
				return nil, explainConflict(err, owners, ep.Name)
			}
			taken = append(taken, bindings...)
			added = append(added, bindings...)
			for _, b := range bindings {
				ep.Ports = append(ep.Ports, toStorePort(b))
			}
		}
		return nil, nil
	})
	if err != nil {
		return nil, fmt.Errorf("publish on endpoint %q: %w", ref, err)
	}
	return added, nil
}

// explainConflict adds the endpoint that holds a conflicting binding.
func explainConflict(err error, owners []PublishedPort, self string) error {
	var conflict *ports.ConflictError
	if !errors.As(err, &conflict) {
		return err
	}
	for _, p := range owners {
		if p.Binding == conflict.Existing {
			if p.Endpoint == self {
				return fmt.Errorf("%w (on this endpoint already)", err)
			}
			return fmt.Errorf("%w by endpoint %q on network %q", err, p.Endpoint, p.Network)
		}
	}
	return err
}

// Unpublish removes the bindings of an endpoint that a spec selects: its
// container ports and protocol, and its host address and ports where given.
// A spec that selects nothing is an error.
func (e *Engine) Unpublish(ref string, specs []ports.Spec) ([]ports.Binding, error) {
	var removed []ports.Binding
	err := e.update(func(st *store.State) (func(), error) {
		ep, err := findEndpoint(st, ref)
		if err != nil {
			return nil, err
		}
		for _, spec := range specs {
			before := len(ep.Ports)
			ep.Ports = slices.DeleteFunc(ep.Ports, func(p store.Port) bool {
				b := toBinding(p)
				if selects(spec, b) {
					removed = append(removed, b)
					return true
				}
				return false
			})
			if len(ep.Ports) == before {
				return nil, fmt.Errorf("port spec %s matches no published port of endpoint %q", spec, ep.Name)
			}
		}
		return nil, nil
	})
	if err != nil {
		return nil, fmt.Errorf("unpublish on endpoint %q: %w", ref, err)
	}
	return removed, nil
}

func selects(spec ports.Spec, b ports.Binding) bool {
	proto := spec.Proto
	if proto == 0 {
		proto = ports.TCP
	}
	if b.Proto != proto || !spec.ContainerPorts.Contains(b.ContainerPort) {
		return false
	}
	if !spec.HostPorts.IsZero() && !spec.HostPorts.Contains(b.HostPort) {
		return false
	}
	return !spec.HostIP.IsValid() || spec.HostIP == b.HostIP
}

// Ports lists every published port, by endpoint then host port.
func (e *Engine) Ports() ([]PublishedPort, error) {
	st, err := e.State()
	if err != nil {
		return nil, err
	}
	return publishedPorts(st), nil
}

func publishedPorts(st *store.State) []PublishedPort {
	var out []PublishedPort
	for _, name := range sortedKeys(st.Endpoints) {
		ep := st.Endpoints[name]
		for _, p := range ep.Ports {
			out = append(out, PublishedPort{Endpoint: ep.Name, Network: ep.Network, Addr: ep.Addr, Binding: toBinding(p)})
		}
	}
	return out
}

func toStorePort(b ports.Binding) store.Port {
	hostIP := b.HostIP
	if !hostIP.IsValid() {
		hostIP = netip.IPv4Unspecified()
	}
	return store.Port{Proto: b.Proto.String(), HostIP: hostIP, HostPort: b.HostPort, ContainerPort: b.ContainerPort}
}

func toBinding(p store.Port) ports.Binding {
	proto, _ := ports.ParseProto(p.Proto)
	hostIP := p.HostIP
	if !hostIP.IsValid() {
		hostIP = netip.IPv4Unspecified()
	}
	return ports.Binding{Proto: proto, HostIP: hostIP, HostPort: p.HostPort, ContainerPort: p.ContainerPort}
}
