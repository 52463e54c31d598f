package driver

import (
	"fmt"
	"net/http"
	"net/netip"

	"github.com/nftbridge/nftbridge/bridge"
	"github.com/nftbridge/nftbridge/bridge/store"
	"github.com/nftbridge/nftbridge/ports"
)

func (s *Server) activate([]byte, *Request) (any, error) {
	return activateResponse{Implements: []string{"NetworkDriver"}}, nil
}

// capabilities: networks live on this host only.
func (s *Server) capabilities([]byte, *Request) (any, error) {
	return capabilitiesResponse{Scope: "local", ConnectivityScope: "local"}, nil
}

// discover acknowledges swarm node discovery, which a local driver ignores.
func (s *Server) discover([]byte, *Request) (any, error) {
	return emptyResponse{}, nil
}

func (s *Server) createNetwork(body []byte, r *Request) (any, error) {
	var req createNetworkRequest
	if err := decode(r.Method, body, &req); err != nil {
		return nil, err
	}
	r.NetworkID = req.NetworkID
	if err := checkID("NetworkID", req.NetworkID); err != nil {
		return nil, badRequest("%v", err)
	}
	opts, err := networkOptions(&req)
	if err != nil {
		return nil, badRequest("network %s: %v", short(req.NetworkID), err)
	}
	if _, err := s.engine.CreateNetwork(opts); err != nil {
		return nil, err
	}
	return emptyResponse{}, nil
}

// deleteNetwork removes the network even if the store still lists
// endpoints on it: Docker deletes a network only once it has none, so any
// left are stale records.
func (s *Server) deleteNetwork(body []byte, r *Request) (any, error) {
	var req networkRequest
	if err := decode(r.Method, body, &req); err != nil {
		return nil, err
	}
	r.NetworkID = req.NetworkID
	if err := checkID("NetworkID", req.NetworkID); err != nil {
		return nil, badRequest("%v", err)
	}
	if err := s.engine.RemoveNetwork(req.NetworkID, true); err != nil {
		return nil, err
	}
	return emptyResponse{}, nil
}

func (s *Server) createEndpoint(body []byte, r *Request) (any, error) {
	var req createEndpointRequest
	if err := decode(r.Method, body, &req); err != nil {
		return nil, err
	}
	r.NetworkID, r.EndpointID = req.NetworkID, req.EndpointID
	if err := checkIDs(req.NetworkID, req.EndpointID); err != nil {
		return nil, err
	}
	if req.Interface == nil || req.Interface.Address == "" {
		return nil, badRequest("endpoint %s: no IPv4 address: nftbridge needs Docker's IPAM to assign one", short(req.EndpointID))
	}
	if req.Interface.AddressIPv6 != "" {
		return nil, badRequest("endpoint %s: IPv6 address %s is not supported", short(req.EndpointID), req.Interface.AddressIPv6)
	}
	addr, err := netip.ParsePrefix(req.Interface.Address)
	if err != nil || !addr.Addr().Is4() {
		return nil, badRequest("endpoint %s: address %q: want an IPv4 address/prefix length such as 172.18.0.2/16", short(req.EndpointID), req.Interface.Address)
	}
	if err := endpointOptions(req.Options); err != nil {
		return nil, badRequest("endpoint %s: %v", short(req.EndpointID), err)
	}
	_, pruned, err := s.engine.CreateDriverEndpoint(bridge.DriverEndpointOptions{
		Network: req.NetworkID, ID: req.EndpointID, Addr: addr, MAC: req.Interface.MacAddress})
	for _, name := range pruned {
		r.Notes = append(r.Notes, fmt.Sprintf("removed stale endpoint %s: Docker forgot it (its container is gone)", name))
	}
	if err != nil {
		return nil, err
	}
	return createEndpointResponse{}, nil
}

func (s *Server) deleteEndpoint(body []byte, r *Request) (any, error) {
	if _, err := s.endpointOn(body, r); err != nil {
		return nil, err
	}
	if err := s.engine.RemoveEndpoint(r.EndpointID); err != nil {
		return nil, err
	}
	return emptyResponse{}, nil
}

// endpointOperInfo reports the published ports, with the host ports picked.
func (s *Server) endpointOperInfo(body []byte, r *Request) (any, error) {
	ep, err := s.endpointOn(body, r)
	if err != nil {
		return nil, err
	}
	value := map[string]any{}
	if len(ep.Ports) > 0 {
		bindings := make([]portBinding, 0, len(ep.Ports))
		for _, p := range ep.Ports {
			bindings = append(bindings, storePortBinding(ep.Addr, p))
		}
		value[optPortMap] = bindings
	}
	return endpointInfoResponse{Value: value}, nil
}

func (s *Server) join(body []byte, r *Request) (any, error) {
	var req joinRequest
	if err := decode(r.Method, body, &req); err != nil {
		return nil, err
	}
	r.NetworkID, r.EndpointID = req.NetworkID, req.EndpointID
	if err := checkIDs(req.NetworkID, req.EndpointID); err != nil {
		return nil, err
	}
	if err := endpointOptions(req.Options); err != nil {
		return nil, badRequest("join endpoint %s: %v", short(req.EndpointID), err)
	}
	if _, err := s.endpointOnNetwork(req.NetworkID, req.EndpointID); err != nil {
		return nil, err
	}
	ep, n, err := s.engine.JoinEndpoint(req.EndpointID)
	if err != nil {
		return nil, err
	}
	prefix := n.Options[optIfacePrefix]
	if prefix == "" {
		prefix = defaultIfPrefix
	}
	resp := joinResponse{InterfaceName: &interfaceName{SrcName: ep.PeerName, DstPrefix: prefix}}
	// Like Docker's bridge driver: an internal network gives no default
	// route, so the container's gateway (if any) is another network's.
	if !n.Internal {
		resp.Gateway = n.Gateway.String()
	}
	return resp, nil
}

func (s *Server) leave(body []byte, r *Request) (any, error) {
	if _, err := s.endpointOn(body, r); err != nil {
		return nil, err
	}
	if err := s.engine.LeaveEndpoint(r.EndpointID); err != nil {
		return nil, err
	}
	return emptyResponse{}, nil
}

// programExternalConnectivity publishes the container's -p ports. Docker
// calls it for the endpoint that gives the container its default route.
func (s *Server) programExternalConnectivity(body []byte, r *Request) (any, error) {
	var req externalConnectivityRequest
	if err := decode(r.Method, body, &req); err != nil {
		return nil, err
	}
	r.NetworkID, r.EndpointID = req.NetworkID, req.EndpointID
	if err := checkIDs(req.NetworkID, req.EndpointID); err != nil {
		return nil, err
	}
	if err := endpointOptions(req.Options); err != nil {
		return nil, badRequest("endpoint %s: %v", short(req.EndpointID), err)
	}
	specs, _ := portSpecs(req.Options) // checked by endpointOptions
	if _, err := s.endpointOnNetwork(req.NetworkID, req.EndpointID); err != nil {
		return nil, err
	}
	if _, err := s.engine.SetEndpointPorts(req.EndpointID, specs); err != nil {
		return nil, err
	}
	return emptyResponse{}, nil
}

func (s *Server) revokeExternalConnectivity(body []byte, r *Request) (any, error) {
	ep, err := s.endpointOn(body, r)
	if err != nil {
		return nil, err
	}
	if len(ep.Ports) == 0 {
		return emptyResponse{}, nil
	}
	if _, err := s.engine.SetEndpointPorts(r.EndpointID, nil); err != nil {
		return nil, err
	}
	return emptyResponse{}, nil
}

// endpointOn decodes a {NetworkID, EndpointID} request and returns the
// endpoint, which must be on that network.
func (s *Server) endpointOn(body []byte, r *Request) (*store.Endpoint, error) {
	var req endpointRequest
	if err := decode(r.Method, body, &req); err != nil {
		return nil, err
	}
	r.NetworkID, r.EndpointID = req.NetworkID, req.EndpointID
	if err := checkIDs(req.NetworkID, req.EndpointID); err != nil {
		return nil, err
	}
	return s.endpointOnNetwork(req.NetworkID, req.EndpointID)
}

func (s *Server) endpointOnNetwork(networkID, endpointID string) (*store.Endpoint, error) {
	ep, n, err := s.engine.DriverEndpoint(endpointID)
	if err != nil {
		return nil, err
	}
	if n.ID != networkID {
		return nil, &requestError{status: http.StatusNotFound, msg: fmt.Sprintf("endpoint %s is on network %s, not on network %s", short(endpointID), short(n.ID), short(networkID))}
	}
	return ep, nil
}

func checkIDs(networkID, endpointID string) error {
	if err := checkID("NetworkID", networkID); err != nil {
		return badRequest("%v", err)
	}
	if err := checkID("EndpointID", endpointID); err != nil {
		return badRequest("%v", err)
	}
	return nil
}

func short(id string) string { return id[:min(12, len(id))] }

func storePortBinding(addr netip.Addr, p store.Port) portBinding {
	proto, _ := ports.ParseProto(p.Proto)
	hostIP := p.HostIP
	if !hostIP.IsValid() {
		hostIP = netip.IPv4Unspecified()
	}
	return portBinding{Proto: uint8(proto), IP: addr.String(), Port: p.ContainerPort,
		HostIP: hostIP.String(), HostPort: p.HostPort, HostPortEnd: p.HostPort}
}
