package ports

import (
	"fmt"
	"net/netip"
)

// Expand turns spec into concrete bindings, one per container port, in
// container-port order. Where the spec leaves the host port open it picks
// the lowest port not conflicting with taken (or with the bindings chosen
// earlier in this call): from ephemeral when spec.HostPorts is zero, or from
// spec.HostPorts when that range is offered for a single container port, as
// Docker does. Callers normally pass DefaultEphemeral() as ephemeral.
//
// Expand is deterministic. It fails with a *ConflictError naming the
// published binding when a fixed host port is taken, and with a
// *NoFreePortError when no port is left to pick; in either case it returns
// no bindings.
func Expand(spec Spec, taken []Binding, ephemeral PortRange) ([]Binding, error) {
	if err := spec.Validate(); err != nil {
		return nil, fmt.Errorf("expand port spec %s: %w", spec, err)
	}
	hostIP, proto := normalizeHostIP(spec.HostIP), spec.proto()
	pickFrom := spec.HostPorts
	switch {
	case spec.HostPorts.IsZero():
		if err := ephemeral.validate("ephemeral port"); err != nil {
			return nil, fmt.Errorf("expand port spec %s: %w", spec, err)
		}
		pickFrom = ephemeral
	case spec.HostPorts.Len() == spec.ContainerPorts.Len():
		pickFrom = PortRange{} // paired port by port: nothing to pick
	}
	occupied := occupiedHostPorts(taken, proto, hostIP)
	picker := portPicker{from: pickFrom, next: pickFrom.First}
	bindings := make([]Binding, 0, spec.ContainerPorts.Len())
	for i := 0; i < spec.ContainerPorts.Len(); i++ {
		wanted := Binding{
			Proto:         proto,
			HostIP:        hostIP,
			ContainerPort: spec.ContainerPorts.First + uint16(i),
		}
		if pickFrom.IsZero() {
			wanted.HostPort = spec.HostPorts.First + uint16(i)
			if existing, clash := occupied[wanted.HostPort]; clash {
				return nil, &ConflictError{Wanted: wanted, Existing: existing}
			}
		} else {
			port, ok := picker.pick(occupied)
			if !ok {
				return nil, &NoFreePortError{Range: pickFrom, HostIP: hostIP, ContainerPort: wanted.ContainerPort, Proto: proto}
			}
			wanted.HostPort = port
		}
		occupied[wanted.HostPort] = wanted
		bindings = append(bindings, wanted)
	}
	return bindings, nil
}

// occupiedHostPorts indexes, by host port, the taken bindings that would
// conflict with a binding for proto on hostIP.
func occupiedHostPorts(taken []Binding, proto Proto, hostIP netip.Addr) map[uint16]Binding {
	occupied := make(map[uint16]Binding)
	for _, published := range taken {
		probe := Binding{Proto: proto, HostIP: hostIP, HostPort: published.HostPort}
		if _, seen := occupied[published.HostPort]; !seen && probe.Conflicts(published) {
			occupied[published.HostPort] = published
		}
	}
	return occupied
}

// portPicker hands out the lowest free ports of a range in order. Ports only
// ever become occupied during one Expand, so it never needs to look back.
type portPicker struct {
	from      PortRange
	next      uint16
	exhausted bool
}

// pick returns the lowest port at or above the cursor that is not occupied.
func (p *portPicker) pick(occupied map[uint16]Binding) (uint16, bool) {
	for !p.exhausted {
		port := p.next
		if port == p.from.Last {
			p.exhausted = true // stop before p.next would wrap past 65535
		} else {
			p.next++
		}
		if _, busy := occupied[port]; !busy {
			return port, true
		}
	}
	return 0, false
}
