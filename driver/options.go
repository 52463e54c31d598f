package driver

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/nftbridge/nftbridge/bridge"
	"github.com/nftbridge/nftbridge/ports"
)

// idOK is what Docker's IDs look like (64 hex digits); anything
// alphanumeric from 12 to 64 characters is accepted. (Plain functions, not
// regular expressions: those were compiled at every CLI start-up.)
func idOK(id string) bool {
	return len(id) >= 12 && len(id) <= 64 &&
		strings.IndexFunc(id, func(r rune) bool { return !isLetter(r) && !('0' <= r && r <= '9') }) < 0
}

func isLetter(r rune) bool { return 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' }

func checkID(field, id string) error {
	if id == "" {
		return fmt.Errorf("%s is missing", field)
	}
	if !idOK(id) {
		return fmt.Errorf("invalid %s %q: want Docker's hexadecimal ID (12 to 64 characters)", field, id)
	}
	return nil
}

// NetworkName is the name a Docker network gets in nftbridge's store:
// Docker does not tell drivers its own name, so "docker-" and the first 12
// digits of the ID, which `docker network ls` shows.
func NetworkName(id string) string { return "docker-" + id[:min(12, len(id))] }

// supportedGeneric lists the `docker network create -o` keys nftbridge honours.
const supportedGeneric = optBridgeName + ", " + optEnableICC + ", " + optMasquerade + ", " +
	optHostBinding + ", " + optMTU + ", " + optIfacePrefix

// networkOptions maps a CreateNetwork request onto the engine's options.
// Anything it cannot honour is an error naming it.
func networkOptions(req *createNetworkRequest) (bridge.NetworkOptions, error) {
	opts := bridge.DefaultNetworkOptions(NetworkName(req.NetworkID))
	opts.ID = req.NetworkID
	if err := topLevelOptions(req.Options, &opts); err != nil {
		return opts, err
	}
	if len(req.IPv6Data) > 0 {
		return opts, fmt.Errorf("IPv6 is not supported: refusing IPv6 pool %q", req.IPv6Data[0].Pool)
	}
	if err := ipv4Data(req.IPv4Data, &opts); err != nil {
		return opts, err
	}
	return opts, nil
}

// topLevelOptions reads the Options object libnetwork builds: the IP
// families, internal, and the -o map under com.docker.network.generic.
func topLevelOptions(raw map[string]json.RawMessage, opts *bridge.NetworkOptions) error {
	for _, key := range slices.Sorted(maps.Keys(raw)) {
		value := raw[key]
		switch key {
		case optEnableIPv6:
			on, err := jsonBool(key, value)
			if err != nil {
				return err
			}
			if on {
				return fmt.Errorf("option %s=true (--ipv6) is not supported: nftbridge networks are IPv4 only", key)
			}
		case optEnableIPv4:
			on, err := jsonBool(key, value)
			if err != nil {
				return err
			}
			if !on {
				return fmt.Errorf("option %s=false is not supported: nftbridge networks are IPv4 networks", key)
			}
		case optInternal:
			on, err := jsonBool(key, value)
			if err != nil {
				return err
			}
			opts.Internal = on
		case optGeneric:
			if err := genericOptionsFrom(value, opts); err != nil {
				return err
			}
		default:
			return fmt.Errorf("network option %q is not supported", key)
		}
	}
	return nil
}

func jsonBool(key string, value json.RawMessage) (bool, error) {
	var b bool
	if err := json.Unmarshal(value, &b); err != nil {
		return false, fmt.Errorf("option %s: want true or false, got %s", key, value)
	}
	return b, nil
}

// genericOptionsFrom applies the -o options. Docker's bridge driver keys are
// honoured where nftbridge has the knob; every other key is refused by name.
func genericOptionsFrom(value json.RawMessage, opts *bridge.NetworkOptions) error {
	var generic map[string]any
	if err := json.Unmarshal(value, &generic); err != nil {
		return fmt.Errorf("option %s: want an object of driver options, got %s", optGeneric, value)
	}
	stored := map[string]string{}
	for _, key := range slices.Sorted(maps.Keys(generic)) {
		text, ok := generic[key].(string)
		if !ok {
			return fmt.Errorf("driver option %s: want a string value, got %v", key, generic[key])
		}
		if err := genericOption(key, text, opts); err != nil {
			return err
		}
		stored[key] = text
	}
	if len(stored) > 0 {
		opts.Options = stored
	}
	return nil
}

func genericOption(key, text string, opts *bridge.NetworkOptions) error {
	var err error
	switch key {
	case optBridgeName:
		opts.Bridge = text
	case optEnableICC:
		opts.ICC, err = parseBool(key, text)
	case optMasquerade:
		opts.Masquerade, err = parseBool(key, text)
	case optHostBinding:
		addr, perr := netip.ParseAddr(text)
		if perr != nil || !addr.Is4() {
			return fmt.Errorf("driver option %s=%q: want an IPv4 address such as 127.0.0.1", key, text)
		}
		if !addr.IsUnspecified() {
			opts.HostIP = addr
		}
	case optMTU:
		if opts.MTU, err = strconv.Atoi(text); err != nil {
			return fmt.Errorf("driver option %s=%q: want a number such as 1500", key, text)
		}
	case optIfacePrefix:
		if !ifPrefixOK(text) {
			return fmt.Errorf("driver option %s=%q: want 1-10 letters, e.g. eth", key, text)
		}
	default:
		return fmt.Errorf("driver option %q is not supported (supported: %s)", key, supportedGeneric)
	}
	return err
}

// ifPrefixOK wants 1-10 letters: room for Docker's index in a 15-byte
// name.
func ifPrefixOK(s string) bool {
	return len(s) >= 1 && len(s) <= 10 && strings.IndexFunc(s, func(r rune) bool { return !isLetter(r) }) < 0
}

func parseBool(key, text string) (bool, error) {
	b, err := strconv.ParseBool(text)
	if err != nil {
		return false, fmt.Errorf("driver option %s=%q: want true or false", key, text)
	}
	return b, nil
}

// ipv4Data takes the one IPv4 pool: its subnet and gateway.
func ipv4Data(pools []ipamData, opts *bridge.NetworkOptions) error {
	switch len(pools) {
	case 0:
		return fmt.Errorf("no IPv4 pool: nftbridge needs Docker's IPAM to assign the network a subnet")
	case 1:
	default:
		subnets := make([]string, len(pools))
		for i, p := range pools {
			subnets[i] = p.Pool
		}
		return fmt.Errorf("nftbridge supports one IPv4 subnet per network, got %d (%s)", len(pools), strings.Join(subnets, ", "))
	}
	pool := pools[0]
	subnet, err := netip.ParsePrefix(pool.Pool)
	if err != nil || !subnet.Addr().Is4() {
		return fmt.Errorf("IPv4 pool %q: want a subnet such as 172.18.0.0/16", pool.Pool)
	}
	opts.Subnet = subnet
	if pool.Gateway != "" {
		gateway, err := netip.ParsePrefix(pool.Gateway)
		if err != nil || !gateway.Addr().Is4() {
			return fmt.Errorf("IPv4 gateway %q: want an address/prefix length such as 172.18.0.1/16", pool.Gateway)
		}
		opts.Gateway = gateway.Addr()
	}
	// Other aux addresses are reservations in Docker's IPAM: nothing to do.
	if _, ok := pool.AuxAddresses[auxGatewayIPv4]; ok {
		return fmt.Errorf("aux address %s (a default gateway other than the bridge) is not supported", auxGatewayIPv4)
	}
	return nil
}

// endpointOptions checks an endpoint's (or a Join's) options: only the port
// lists Docker always sends are known, and the port map must be one
// nftbridge can publish.
func endpointOptions(raw map[string]json.RawMessage) error {
	for _, key := range slices.Sorted(maps.Keys(raw)) {
		switch key {
		case optPortMap:
			if _, err := portSpecs(raw); err != nil {
				return err
			}
		case optExposedPorts:
			var exposed []transportPort
			if err := json.Unmarshal(raw[key], &exposed); err != nil {
				return fmt.Errorf("option %s: want a list of {Proto, Port}, got %s", key, raw[key])
			}
		default:
			return fmt.Errorf("endpoint option %q is not supported", key)
		}
	}
	return nil
}

// portSpecs turns the port map of a request's options into port specs.
func portSpecs(raw map[string]json.RawMessage) ([]ports.Spec, error) {
	value, ok := raw[optPortMap]
	if !ok || string(value) == "null" {
		return nil, nil
	}
	var bindings []portBinding
	if err := json.Unmarshal(value, &bindings); err != nil {
		return nil, fmt.Errorf("option %s: want a list of port bindings, got %s", optPortMap, value)
	}
	specs := make([]ports.Spec, 0, len(bindings))
	for _, b := range bindings {
		spec, err := specFromBinding(b)
		if err != nil {
			return nil, err
		}
		specs = append(specs, spec)
	}
	return specs, nil
}

// specFromBinding maps one Docker port binding onto a spec.
func specFromBinding(b portBinding) (ports.Spec, error) {
	var spec ports.Spec
	switch b.Proto {
	case uint8(ports.TCP), uint8(ports.UDP):
		spec.Proto = ports.Proto(b.Proto)
	case 132:
		return spec, fmt.Errorf("port binding %s: protocol sctp is not supported: only tcp and udp", describe(b))
	default:
		return spec, fmt.Errorf("port binding %s: protocol number %d is not supported: only tcp (6) and udp (17)", describe(b), b.Proto)
	}
	if b.HostIP != "" {
		addr, err := netip.ParseAddr(b.HostIP)
		if err != nil || !addr.Is4() {
			return spec, fmt.Errorf("port binding %s: host IP %q is not supported: only IPv4 addresses", describe(b), b.HostIP)
		}
		if !addr.IsUnspecified() {
			spec.HostIP = addr
		}
	}
	if b.Port == 0 {
		return spec, fmt.Errorf("port binding %s: container port 0 is not a port", describe(b))
	}
	spec.ContainerPorts = ports.SinglePort(b.Port)
	switch {
	case b.HostPort == 0 && b.HostPortEnd == 0:
		// Any free port: the engine picks.
	case b.HostPort == 0 || (b.HostPortEnd != 0 && b.HostPortEnd < b.HostPort):
		return spec, fmt.Errorf("port binding %s: host port range %d-%d is not a range", describe(b), b.HostPort, b.HostPortEnd)
	default:
		spec.HostPorts = ports.PortRange{First: b.HostPort, Last: max(b.HostPort, b.HostPortEnd)}
	}
	if err := spec.Validate(); err != nil {
		return spec, fmt.Errorf("port binding %s: %w", describe(b), err)
	}
	return spec, nil
}

// describe writes a binding the way Docker's -p reads.
func describe(b portBinding) string {
	var host string
	if b.HostPort != 0 {
		host = strconv.Itoa(int(b.HostPort))
		if b.HostPortEnd > b.HostPort {
			host += "-" + strconv.Itoa(int(b.HostPortEnd))
		}
		host += ":"
	}
	if b.HostIP != "" {
		host = b.HostIP + ":" + host
		if b.HostPort == 0 {
			host += ":"
		}
	}
	proto := ports.Proto(b.Proto).String()
	if b.Proto == 132 {
		proto = "sctp"
	}
	return fmt.Sprintf("%s%d/%s", host, b.Port, proto)
}
