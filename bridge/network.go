package bridge

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/netip"
	"strings"

	"github.com/nftbridge/nftbridge/bridge/ipam"
	"github.com/nftbridge/nftbridge/bridge/store"
)

// NetworkOptions are the knobs of `network create`.
type NetworkOptions struct {
	Name string
	// ID is set by the Docker driver (Docker's network ID); random otherwise.
	ID         string
	Bridge     string       // default "nb-" + first 12 hex digits of the ID
	Subnet     netip.Prefix // default: the first free subnet of Docker's pools
	Gateway    netip.Addr   // default: the first host address
	Internal   bool
	ICC        bool
	Masquerade bool
	HostIP     netip.Addr // default host address for published ports
	MTU        int
	Options    map[string]string
}

// DefaultNetworkOptions are Docker's defaults: ICC and masquerade on.
func DefaultNetworkOptions(name string) NetworkOptions {
	return NetworkOptions{Name: name, ICC: true, Masquerade: true}
}

// Names are checked with plain functions, not regular expressions:
// compiling `{0,63}` at start-up was a tenth of every CLI call's package
// initialisation. Every allowed character is ASCII, so a length in bytes
// is a length in characters.

// notNameChar reports whether r may not appear in a name ([a-zA-Z0-9_.-]).
func notNameChar(r rune) bool {
	return !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '_' || r == '.' || r == '-')
}

// nameOK is Docker's rule for object names: 1-64 of [a-zA-Z0-9_.-],
// starting with a letter or digit.
func nameOK(s string) bool {
	return len(s) >= 1 && len(s) <= 64 && !strings.ContainsRune("_.-", rune(s[0])) && strings.IndexFunc(s, notNameChar) < 0
}

// ifnameOK is what Linux accepts as an interface name, minus the
// characters that confuse tools: 1-15 of [a-zA-Z0-9_.-].
func ifnameOK(s string) bool {
	return len(s) >= 1 && len(s) <= 15 && strings.IndexFunc(s, notNameChar) < 0
}

func validName(kind, name string) error {
	if !nameOK(name) {
		return fmt.Errorf("invalid %s name %q: use 1-64 characters [a-zA-Z0-9_.-], starting with a letter or digit", kind, name)
	}
	return nil
}

// CreateNetwork creates the bridge, records the network and adds its elements.
func (e *Engine) CreateNetwork(opts NetworkOptions) (*store.Network, error) {
	if err := validName("network", opts.Name); err != nil {
		return nil, err
	}
	if opts.ID == "" {
		opts.ID = e.cfg.IDs()
	}
	if opts.Bridge == "" {
		opts.Bridge = "nb-" + opts.ID[:min(12, len(opts.ID))]
	}
	if !ifnameOK(opts.Bridge) {
		return nil, fmt.Errorf("invalid bridge name %q: use 1-15 characters [a-zA-Z0-9_.-]", opts.Bridge)
	}
	if opts.MTU != 0 && (opts.MTU < 68 || opts.MTU > 65535) {
		return nil, fmt.Errorf("invalid MTU %d: must be between 68 and 65535", opts.MTU)
	}
	if opts.HostIP.IsValid() && !opts.HostIP.Is4() {
		return nil, fmt.Errorf("invalid host IP %s: only IPv4 is supported", opts.HostIP)
	}
	if opts.Internal {
		opts.Masquerade = false
	}
	var created *store.Network
	err := e.update(func(st *store.State) (func(), error) {
		n, err := e.newNetwork(st, opts)
		if err != nil {
			return nil, err
		}
		if err := e.cfg.Links.EnsureBridge(n.Bridge, netip.PrefixFrom(n.Gateway, n.Subnet.Bits()), n.MTU); err != nil {
			return func() { _ = e.cfg.Links.DeleteBridge(n.Bridge) }, err
		}
		undo := func() { _ = e.cfg.Links.DeleteBridge(n.Bridge) }
		if err := e.cfg.Links.EnableRouteLocalnet(n.Bridge); err != nil {
			return undo, err
		}
		if !n.ICC {
			// Without it, traffic between two containers of the bridge
			// never meets the ICC rule: refuse rather than not enforce.
			if err := e.cfg.Links.EnableBridgeNetfilter(n.Bridge); err != nil {
				return undo, fmt.Errorf("ICC off needs bridge netfilter: %w", err)
			}
		}
		st.Networks[n.Name] = n
		created = n.Clone()
		return undo, nil
	})
	if err != nil {
		return nil, fmt.Errorf("create network %q: %w", opts.Name, err)
	}
	return created, nil
}

// newNetwork validates opts against the state and fills in defaults.
func (e *Engine) newNetwork(st *store.State, opts NetworkOptions) (*store.Network, error) {
	if _, ok := st.Networks[opts.Name]; ok {
		return nil, fmt.Errorf("network name %q is already in use", opts.Name)
	}
	var used []netip.Prefix
	for _, n := range st.Networks {
		if n.Bridge == opts.Bridge {
			return nil, fmt.Errorf("bridge %q is already used by network %q", opts.Bridge, n.Name)
		}
		if n.ID == opts.ID {
			return nil, fmt.Errorf("network ID %s is already used by network %q", opts.ID, n.Name)
		}
		used = append(used, n.Subnet)
	}
	exists, err := e.cfg.Links.LinkExists(opts.Bridge)
	if err != nil {
		return nil, err
	}
	if exists {
		return nil, fmt.Errorf("interface %q already exists and is not managed by nftbridge", opts.Bridge)
	}
	subnet := opts.Subnet
	if subnet.IsValid() {
		if err := ipam.ValidateSubnet(subnet, used); err != nil {
			return nil, err
		}
	} else if subnet, err = ipam.NextSubnet(ipam.DefaultPools(), used); err != nil {
		return nil, err
	}
	gateway := opts.Gateway
	if gateway.IsValid() {
		if err := ipam.ValidateGateway(subnet, gateway); err != nil {
			return nil, err
		}
	} else {
		gateway = ipam.DefaultGateway(subnet)
	}
	if _, err := e.cfg.Host.Prepare(); err != nil {
		return nil, err
	}
	return &store.Network{
		Name: opts.Name, ID: opts.ID, Bridge: opts.Bridge, Subnet: subnet, Gateway: gateway,
		Internal: opts.Internal, ICC: opts.ICC, Masquerade: opts.Masquerade,
		HostIP: opts.HostIP, MTU: opts.MTU, Options: opts.Options, Created: e.cfg.Now().UTC(),
	}, nil
}

// RemoveNetwork removes a network's elements and bridge. With endpoints still
// attached it refuses, unless force, which removes them first.
func (e *Engine) RemoveNetwork(ref string, force bool) error {
	var bridgeName string
	var veths []string
	var gone []*store.Endpoint
	err := e.update(func(st *store.State) (func(), error) {
		n, err := findNetwork(st, ref)
		if err != nil {
			return nil, err
		}
		eps := st.EndpointsOn(n.Name)
		if len(eps) > 0 && !force {
			names := make([]string, len(eps))
			for i, ep := range eps {
				names[i] = ep.Name
			}
			return nil, fmt.Errorf("network %q has %d endpoint(s) attached (%v): remove them first or use --force", n.Name, len(eps), names)
		}
		for _, ep := range eps {
			veths = append(veths, ep.HostVeth)
			gone = append(gone, ep.Clone())
			delete(st.Endpoints, ep.Name)
		}
		delete(st.Networks, n.Name)
		bridgeName = n.Bridge
		return nil, nil
	})
	if err != nil {
		return fmt.Errorf("remove network %q: %w", ref, err)
	}
	// The elements are gone from the kernel and the store; links go last
	// so a failure here leaves only an idle interface behind. Connections
	// are forgotten once the veths are gone and no packet can start
	// another one.
	defer func() {
		for _, ep := range gone {
			e.forgetEndpoint(ep.Addr)
		}
	}()
	for _, veth := range veths {
		if err := e.cfg.Links.DeleteVeth(veth); err != nil {
			return fmt.Errorf("network %q removed, but its veth %q: %w", ref, veth, err)
		}
	}
	if err := e.cfg.Links.DeleteBridge(bridgeName); err != nil {
		return fmt.Errorf("network %q removed, but its bridge %q: %w", ref, bridgeName, err)
	}
	return nil
}

// randomID is a Docker-style 64-hex-digit identifier.
func randomID() string {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("crypto/rand failed: %v", err)) // never happens on Linux
	}
	return hex.EncodeToString(b[:])
}
