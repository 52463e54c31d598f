package driver

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// setOpt sets a top-level option of a request.
func setOpt(key string, value any) func(map[string]any) {
	return func(req map[string]any) {
		opts, _ := req["Options"].(map[string]any)
		if opts == nil {
			opts = map[string]any{}
			req["Options"] = opts
		}
		opts[key] = value
	}
}

// setGeneric sets one `-o` option of a CreateNetwork request.
func setGeneric(key, value string) func(map[string]any) {
	return func(req map[string]any) {
		req["Options"].(map[string]any)[optGeneric].(map[string]any)[key] = value
	}
}

func setField(key string, value any) func(map[string]any) {
	return func(req map[string]any) { req[key] = value }
}

// setPortMap replaces the port map of an endpoint request with one binding.
func setPortMap(b portBinding) func(map[string]any) {
	return setOpt(optPortMap, []portBinding{b})
}

// TestRefused: every malformed, unknown or unsupported request is answered
// {"Err": ...} naming what is wrong, and reaches no engine method that
// changes anything.
func TestRefused(t *testing.T) {
	for _, c := range []struct {
		name, method, body string
		status             int
		want               string
	}{
		{"malformed JSON", "NetworkDriver.CreateNetwork", `{"NetworkID": `, 400, "malformed NetworkDriver.CreateNetwork request"},
		{"wrong type", "NetworkDriver.CreateNetwork", `{"NetworkID": 5}`, 400, "malformed"},
		{"no network ID", "NetworkDriver.CreateNetwork", `{}`, 400, "NetworkID is missing"},
		{"bad network ID", "NetworkDriver.DeleteNetwork", `{"NetworkID":"../etc"}`, 400, `"../etc"`},
		{"--ipv6", "NetworkDriver.CreateNetwork", fixture(t, "CreateNetwork-ipv6"), 400, "com.docker.network.enable_ipv6=true"},
		{"IPv6 pool", "NetworkDriver.CreateNetwork", edit(t, "CreateNetwork", setField("IPv6Data", []ipamData{{Pool: "fd00:7::/64"}})), 400, "fd00:7::/64"},
		{"bridge option", "NetworkDriver.CreateNetwork", edit(t, "CreateNetwork", setGeneric("com.docker.network.bridge.inhibit_ipv4", "true")), 400, "com.docker.network.bridge.inhibit_ipv4"},
		{"user option", "NetworkDriver.CreateNetwork", edit(t, "CreateNetwork", setGeneric("color", "blue")), 400, `"color"`},
		{"bad bool", "NetworkDriver.CreateNetwork", edit(t, "CreateNetwork", setGeneric(optEnableICC, "maybe")), 400, `enable_icc="maybe"`},
		{"bad MTU", "NetworkDriver.CreateNetwork", edit(t, "CreateNetwork", setGeneric(optMTU, "big")), 400, `mtu="big"`},
		{"IPv6 host binding", "NetworkDriver.CreateNetwork", edit(t, "CreateNetwork", setGeneric(optHostBinding, "::1")), 400, `host_binding_ipv4="::1"`},
		{"bad iface prefix", "NetworkDriver.CreateNetwork", edit(t, "CreateNetwork", setGeneric(optIfacePrefix, "eth0-")), 400, `"eth0-"`},
		{"non-string option", "NetworkDriver.CreateNetwork", edit(t, "CreateNetwork", setOpt(optGeneric, map[string]any{optMTU: 1400})), 400, optMTU},
		{"unknown top-level option", "NetworkDriver.CreateNetwork", edit(t, "CreateNetwork", setOpt("com.docker.network.foo", true)), 400, "com.docker.network.foo"},
		{"IPv4 off", "NetworkDriver.CreateNetwork", edit(t, "CreateNetwork", setOpt(optEnableIPv4, false)), 400, "enable_ipv4=false"},
		{"internal not a bool", "NetworkDriver.CreateNetwork", edit(t, "CreateNetwork", setOpt(optInternal, "yes")), 400, optInternal},
		{"two pools", "NetworkDriver.CreateNetwork", edit(t, "CreateNetwork", setField("IPv4Data", []ipamData{{Pool: "10.1.0.0/24"}, {Pool: "10.2.0.0/24"}})), 400, "10.1.0.0/24, 10.2.0.0/24"},
		{"no pool", "NetworkDriver.CreateNetwork", edit(t, "CreateNetwork", setField("IPv4Data", nil)), 400, "no IPv4 pool"},
		{"bad pool", "NetworkDriver.CreateNetwork", edit(t, "CreateNetwork", setField("IPv4Data", []ipamData{{Pool: "10.1.0.0"}})), 400, `"10.1.0.0"`},
		{"bad gateway", "NetworkDriver.CreateNetwork", edit(t, "CreateNetwork", setField("IPv4Data", []ipamData{{Pool: "10.1.0.0/24", Gateway: "10.1.0.1"}})), 400, `"10.1.0.1"`},
		{"aux default gateway", "NetworkDriver.CreateNetwork", edit(t, "CreateNetwork", setField("IPv4Data", []ipamData{{Pool: "10.1.0.0/24", AuxAddresses: map[string]string{auxGatewayIPv4: "10.1.0.9/24"}}})), 400, auxGatewayIPv4},
		{"sctp", "NetworkDriver.CreateEndpoint", fixture(t, "CreateEndpoint-sctp"), 400, "70/sctp"},
		{"IPv6 host IP", "NetworkDriver.CreateEndpoint", edit(t, "CreateEndpoint", setPortMap(portBinding{Proto: 6, Port: 80, HostIP: "::", HostPort: 8080})), 400, `host IP "::"`},
		{"reversed host range", "NetworkDriver.CreateEndpoint", edit(t, "CreateEndpoint", setPortMap(portBinding{Proto: 6, Port: 80, HostPort: 9000, HostPortEnd: 8000})), 400, "9000-8000"},
		{"container port 0", "NetworkDriver.CreateEndpoint", edit(t, "CreateEndpoint", setPortMap(portBinding{Proto: 6, HostPort: 80})), 400, "container port 0"},
		{"endpoint option", "NetworkDriver.CreateEndpoint", edit(t, "CreateEndpoint", setOpt("com.docker.network.endpoint.sysctls", "x")), 400, "com.docker.network.endpoint.sysctls"},
		{"IPv6 address", "NetworkDriver.CreateEndpoint", edit(t, "CreateEndpoint", setField("Interface", map[string]any{"Address": "172.17.0.2/16", "AddressIPv6": "fd00::2/64"})), 400, "fd00::2/64"},
		{"no address", "NetworkDriver.CreateEndpoint", edit(t, "CreateEndpoint", setField("Interface", nil)), 400, "no IPv4 address"},
		{"bad address", "NetworkDriver.CreateEndpoint", edit(t, "CreateEndpoint", setField("Interface", map[string]any{"Address": "172.17.0.2"})), 400, `"172.17.0.2"`},
		{"no endpoint ID", "NetworkDriver.Leave", `{"NetworkID":"` + net1 + `"}`, 400, "EndpointID is missing"},
		{"unknown network", "NetworkDriver.CreateEndpoint", edit(t, "CreateEndpoint", setField("NetworkID", strings.Repeat("ab", 32))), 404, strings.Repeat("ab", 32)},
		{"unknown endpoint: Join", "NetworkDriver.Join", edit(t, "Join", setField("EndpointID", strings.Repeat("cd", 32))), 404, strings.Repeat("cd", 32)},
		{"unknown endpoint: Leave", "NetworkDriver.Leave", edit(t, "Leave", setField("EndpointID", strings.Repeat("cd", 32))), 404, strings.Repeat("cd", 32)},
		{"unknown endpoint: DeleteEndpoint", "NetworkDriver.DeleteEndpoint", edit(t, "DeleteEndpoint", setField("EndpointID", strings.Repeat("cd", 32))), 404, strings.Repeat("cd", 32)},
		{"unknown endpoint: OperInfo", "NetworkDriver.EndpointOperInfo", edit(t, "EndpointOperInfo", setField("EndpointID", strings.Repeat("cd", 32))), 404, strings.Repeat("cd", 32)},
		{"unknown endpoint: Program", "NetworkDriver.ProgramExternalConnectivity", edit(t, "ProgramExternalConnectivity", setField("EndpointID", strings.Repeat("cd", 32))), 404, strings.Repeat("cd", 32)},
		{"unknown endpoint: Revoke", "NetworkDriver.RevokeExternalConnectivity", edit(t, "RevokeExternalConnectivity", setField("EndpointID", strings.Repeat("cd", 32))), 404, strings.Repeat("cd", 32)},
		{"unknown network: DeleteNetwork", "NetworkDriver.DeleteNetwork", edit(t, "DeleteNetwork", setField("NetworkID", strings.Repeat("ef", 32))), 404, strings.Repeat("ef", 32)},
		{"endpoint on another network", "NetworkDriver.Leave", edit(t, "Leave", setField("NetworkID", netInt)), 404, "not on network 80a74bd6eeb5"},
		{"bad port map: Program", "NetworkDriver.ProgramExternalConnectivity", edit(t, "ProgramExternalConnectivity", setPortMap(portBinding{Proto: 132, Port: 80})), 400, "sctp"},
		{"port map not a list", "NetworkDriver.ProgramExternalConnectivity", edit(t, "ProgramExternalConnectivity", setOpt(optPortMap, "8080:80")), 400, optPortMap},
		{"unknown method", "NetworkDriver.AllocateNetwork", `{}`, 404, `"NetworkDriver.AllocateNetwork"`},
		{"IPAM method", "IpamDriver.RequestPool", `{}`, 404, `"IpamDriver.RequestPool"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := joinedEngine(t)
			before := f.state()
			got := post(t, NewServer(f), c.method, c.body)
			checkErr(t, got, c.status, c.want)
			if after := f.state(); after != before {
				t.Errorf("a refused request changed the engine:\nbefore %s\nafter  %s", before, after)
			}
		})
	}
}

// joinedEngine holds the fixtures' network and endpoint, joined, with the
// internal network beside it.
func joinedEngine(t *testing.T) *fakeEngine {
	t.Helper()
	f := newFakeEngine()
	s := NewServer(f)
	mustPost(t, s, "NetworkDriver.CreateNetwork", fixture(t, "CreateNetwork"), `{}`)
	mustPost(t, s, "NetworkDriver.CreateNetwork", fixture(t, "CreateNetwork-internal"), `{}`)
	mustPost(t, s, "NetworkDriver.CreateEndpoint", fixture(t, "CreateEndpoint"), `{}`)
	mustPost(t, s, "NetworkDriver.Join", fixture(t, "Join"),
		`{"InterfaceName":{"SrcName":"nbp74f483fc07","DstPrefix":"eth"},"Gateway":"172.17.0.1"}`)
	return f
}

// checkErr: the answer has the status and is exactly {"Err": "..."} naming want.
func checkErr(t *testing.T, got answer, status int, want string) {
	t.Helper()
	var resp map[string]any
	if err := json.Unmarshal([]byte(got.body), &resp); err != nil {
		t.Fatalf("answer %q: %v", got.body, err)
	}
	msg, _ := resp["Err"].(string)
	if got.status != status || len(resp) != 1 || !strings.Contains(msg, want) {
		t.Errorf("got %d %s\nwant %d and an Err naming %q", got.status, got.body, status, want)
	}
}

func TestNotPost(t *testing.T) {
	rec := httptest.NewRecorder()
	NewServer(newFakeEngine()).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/Plugin.Activate", nil))
	checkErr(t, answer{status: rec.Code, body: rec.Body.String()}, 400, "POST")
}

func TestBodyTooLarge(t *testing.T) {
	body := `{"NetworkID":"` + strings.Repeat("a", maxBody) + `"}`
	got := post(t, NewServer(newFakeEngine()), "NetworkDriver.DeleteNetwork", body)
	checkErr(t, got, 400, "too large")
}

// TestEngineErrors: the engine's own refusals reach Docker with its words,
// and the observer sees them.
func TestEngineErrors(t *testing.T) {
	f := joinedEngine(t)
	f.fail = errors.New(`publish 8080:80/tcp: host port 8080 is already published by endpoint "web"`)
	var seen Request
	s := NewServer(f, WithObserver(func(r Request) { seen = r }))
	got := post(t, s, "NetworkDriver.ProgramExternalConnectivity", fixture(t, "ProgramExternalConnectivity"))
	checkErr(t, got, 500, `already published by endpoint "web"`)
	if seen.Err == nil || seen.Status != 500 || seen.NetworkID != net1 || seen.EndpointID != ep1 {
		t.Errorf("observer saw %+v", seen)
	}
}
