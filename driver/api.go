// Package driver serves Docker's remote network-driver plugin protocol
// (libnetwork's remote driver API) over HTTP and turns each request into one
// engine operation. It keeps no state: the engine's store is the truth, so a
// restarted daemon serves the same networks and ports.
//
// Every request is a POST to /Plugin.Activate or /NetworkDriver.<Method>
// with a JSON body; every answer is JSON, and an error is {"Err": "..."}
// with a non-200 status (libnetwork's plugin client reads Err either way).
// A request that fails changes nothing.
package driver

import "encoding/json"

// Wire names. Keys are libnetwork's netlabel constants.
const (
	// ContentType is the plugin protocol's media type.
	ContentType = "application/vnd.docker.plugins.v1.2+json"

	optGeneric      = "com.docker.network.generic"
	optEnableIPv6   = "com.docker.network.enable_ipv6"
	optEnableIPv4   = "com.docker.network.enable_ipv4"
	optInternal     = "com.docker.network.internal"
	optPortMap      = "com.docker.network.portmap"
	optExposedPorts = "com.docker.network.endpoint.exposedports"

	optBridgeName   = "com.docker.network.bridge.name"
	optEnableICC    = "com.docker.network.bridge.enable_icc"
	optMasquerade   = "com.docker.network.bridge.enable_ip_masquerade"
	optHostBinding  = "com.docker.network.bridge.host_binding_ipv4"
	optMTU          = "com.docker.network.driver.mtu"
	optIfacePrefix  = "com.docker.network.container_iface_prefix"
	auxGatewayIPv4  = "DefaultGatewayIPv4"
	defaultIfPrefix = "eth"
)

// errorResponse is every failed answer.
type errorResponse struct {
	Err string
}

type activateResponse struct {
	Implements []string
}

type capabilitiesResponse struct {
	Scope             string
	ConnectivityScope string
}

// ipamData is one address pool Docker's IPAM assigned to a network.
type ipamData struct {
	AddressSpace string
	Pool         string            // the subnet, "172.18.0.0/16"
	Gateway      string            // "172.18.0.1/16"
	AuxAddresses map[string]string // name → "a.b.c.d/len", reserved by Docker's IPAM
}

type createNetworkRequest struct {
	NetworkID string
	Options   map[string]json.RawMessage
	IPv4Data  []ipamData
	IPv6Data  []ipamData
}

type networkRequest struct {
	NetworkID string
}

// endpointInterface is the address Docker's IPAM chose for an endpoint.
type endpointInterface struct {
	Address     string
	AddressIPv6 string
	MacAddress  string
}

type createEndpointRequest struct {
	NetworkID  string
	EndpointID string
	Interface  *endpointInterface
	Options    map[string]json.RawMessage
}

// createEndpointResponse leaves Interface out: Docker's address and MAC
// are used as given.
type createEndpointResponse struct{}

// endpointRequest is DeleteEndpoint, EndpointOperInfo, Leave and
// RevokeExternalConnectivity.
type endpointRequest struct {
	NetworkID  string
	EndpointID string
}

type endpointInfoResponse struct {
	Value map[string]any
}

type joinRequest struct {
	NetworkID  string
	EndpointID string
	SandboxKey string
	Options    map[string]json.RawMessage
}

type interfaceName struct {
	SrcName   string
	DstPrefix string
}

type joinResponse struct {
	InterfaceName *interfaceName
	Gateway       string `json:",omitempty"`
}

type externalConnectivityRequest struct {
	NetworkID  string
	EndpointID string
	Options    map[string]json.RawMessage
}

// portBinding is libnetwork's types.PortBinding as JSON. Proto is the IP
// protocol number; HostPort 0 asks for any free port; HostPortEnd above
// HostPort asks for one free port of that range.
type portBinding struct {
	Proto       uint8
	IP          string
	Port        uint16
	HostIP      string
	HostPort    uint16
	HostPortEnd uint16
}

// transportPort is libnetwork's types.TransportPort (an exposed port).
type transportPort struct {
	Proto uint8
	Port  uint16
}

// emptyResponse answers requests that return nothing.
type emptyResponse struct{}
