package bridge

import (
	"errors"
	"fmt"
	"maps"
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
// specs are published, or none. It reads only the endpoint, its network and
// the port index, so its cost does not grow with the number of ports.
func (e *Engine) Publish(ref string, specs []ports.Spec) ([]ports.Binding, error) {
	if len(specs) == 0 {
		return nil, errors.New("publish: no port spec given")
	}
	var added []ports.Binding
	err := e.updateEndpoint(ref, func(tx *store.Tx, ep *store.Endpoint, n *store.Network) error {
		var err error
		added, err = addPorts(tx, ep, n, specs, "")
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("publish on endpoint %q: %w", ref, err)
	}
	return added, nil
}

// addPorts expands specs into bindings that conflict with no published port
// and appends them to ep.Ports. The ports of the endpoint named replacing
// (whose ports the caller has just cleared) do not count as taken.
func addPorts(tx *store.Tx, ep *store.Endpoint, n *store.Network, specs []ports.Spec, replacing string) ([]ports.Binding, error) {
	if len(specs) == 0 {
		return nil, nil
	}
	if n.Internal {
		return nil, fmt.Errorf("network %q is internal: ports cannot be published on it", n.Name)
	}
	var added []ports.Binding
	var mine []PublishedPort // bindings added by this call so far
	for _, spec := range specs {
		if !spec.HostIP.IsValid() && n.HostIP.IsValid() {
			spec.HostIP = n.HostIP
		}
		owners, err := portsNear(tx, spec, replacing, mine)
		if err != nil {
			return nil, err
		}
		taken := make([]ports.Binding, len(owners))
		for i, p := range owners {
			taken[i] = p.Binding
		}
		bindings, err := ports.Expand(spec, taken, ports.DefaultEphemeral())
		if err != nil {
			return nil, explainConflict(err, owners, ep.Name)
		}
		for _, b := range bindings {
			added = append(added, b)
			mine = append(mine, PublishedPort{Endpoint: ep.Name, Network: n.Name, Binding: b})
			ep.Ports = append(ep.Ports, toStorePort(b))
		}
	}
	return added, nil
}

// portsNear returns the published ports a spec could conflict with: those of
// its protocol in the host-port range it asks for (or may pick from), except
// the stored ones of endpoint skip, plus mine.
func portsNear(tx *store.Tx, spec ports.Spec, skip string, mine []PublishedPort) ([]PublishedPort, error) {
	proto := spec.Proto
	if proto == 0 {
		proto = ports.TCP
	}
	hostPorts := spec.HostPorts
	if hostPorts.IsZero() {
		hostPorts = ports.DefaultEphemeral()
	}
	entries, err := tx.PortsIn(proto.String(), hostPorts.First, hostPorts.Last)
	if err != nil {
		return nil, err
	}
	out := make([]PublishedPort, 0, len(entries)+len(mine))
	for _, en := range entries {
		if en.Endpoint != skip || skip == "" {
			out = append(out, PublishedPort{Endpoint: en.Endpoint, Binding: toBinding(en.Port)})
		}
	}
	return append(out, mine...), nil
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
			return fmt.Errorf("%w by endpoint %q", err, p.Endpoint)
		}
	}
	return err
}

// Unpublish removes the bindings of an endpoint that a spec selects: its
// container ports and protocol, and its host address and ports where given.
// A spec that selects nothing is an error.
func (e *Engine) Unpublish(ref string, specs []ports.Spec) ([]ports.Binding, error) {
	var removed []ports.Binding
	var addr netip.Addr
	err := e.updateEndpoint(ref, func(_ *store.Tx, ep *store.Endpoint, _ *store.Network) error {
		addr = ep.Addr
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
				return fmt.Errorf("port spec %s matches no published port of endpoint %q", spec, ep.Name)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("unpublish on endpoint %q: %w", ref, err)
	}
	gone := make([]store.Port, len(removed))
	for i, b := range removed {
		gone[i] = toStorePort(b)
	}
	e.forgetConnections(addr, gone)
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
	for _, name := range slices.Sorted(maps.Keys(st.Endpoints)) {
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
