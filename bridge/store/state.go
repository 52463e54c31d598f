// Package store keeps nftbridge's desired state (networks and endpoints) in
// a bbolt file shared by the CLI and the daemon.
//
// Every View and Update opens the file, takes bbolt's file lock, runs one
// transaction and closes it again. Because the read-write lock is exclusive,
// concurrent processes are serialised and an Update always reads the state it
// writes back in the same transaction: no process can lose another's change.
package store

import (
	"maps"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// Network is a bridge network, keyed by Name.
type Network struct {
	Name       string
	ID         string
	Bridge     string
	Subnet     netip.Prefix
	Gateway    netip.Addr
	Internal   bool
	ICC        bool
	Masquerade bool
	// HostIP is the default host address for published ports (zero = any).
	HostIP  netip.Addr
	MTU     int
	Options map[string]string `json:",omitempty"`
	Created time.Time
}

// Port is a published port of an endpoint. Proto is "tcp" or "udp"; a zero
// HostIP means all host addresses.
type Port struct {
	Proto         string
	HostIP        netip.Addr
	HostPort      uint16
	ContainerPort uint16
}

// Endpoint is a container's attachment to a network, keyed by Name.
type Endpoint struct {
	Name    string
	ID      string
	Network string
	Addr    netip.Addr
	MAC     string
	NetNS   string
	// HostVeth is the host end of the veth pair; PeerName the peer's
	// temporary host-side name (Docker driver mode).
	HostVeth string
	PeerName string
	Ports    []Port
	Created  time.Time
}

// State is the whole desired state. Both maps are keyed by the record's Name
// and are never nil in a State handed out by the Store.
type State struct {
	Networks  map[string]*Network
	Endpoints map[string]*Endpoint
}

// NewState returns an empty State with both maps allocated.
func NewState() *State {
	return &State{Networks: map[string]*Network{}, Endpoints: map[string]*Endpoint{}}
}

// Clone returns a deep copy: changing the copy, its records, their Options
// or Ports never affects s.
func (s *State) Clone() *State {
	out := NewState()
	for name, n := range s.Networks {
		out.Networks[name] = n.Clone()
	}
	for name, e := range s.Endpoints {
		out.Endpoints[name] = e.Clone()
	}
	return out
}

// Clone returns a deep copy of the network (nil for nil).
func (n *Network) Clone() *Network {
	if n == nil {
		return nil
	}
	c := *n
	c.Options = maps.Clone(n.Options)
	return &c
}

// Clone returns a deep copy of the endpoint (nil for nil).
func (e *Endpoint) Clone() *Endpoint {
	if e == nil {
		return nil
	}
	c := *e
	c.Ports = slices.Clone(e.Ports)
	return &c
}

// EndpointsOn returns the endpoints attached to network, sorted by name.
func (s *State) EndpointsOn(network string) []*Endpoint {
	var out []*Endpoint
	for _, e := range s.Endpoints {
		if e.Network == network {
			out = append(out, e)
		}
	}
	slices.SortFunc(out, func(a, b *Endpoint) int { return strings.Compare(a.Name, b.Name) })
	return out
}
