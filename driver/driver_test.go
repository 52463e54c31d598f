package driver

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/nftbridge/nftbridge/ports"
)

// Docker's IDs in the fixtures.
const (
	net1     = "2b7d96618eb332ea5977048f23e58d44254c6dc48beec7ea31c42fac3f6dac56"
	netInt   = "80a74bd6eeb5454c65161b69ece21e5516a812434eb1b3f8283afdaf40d63516"
	ep1      = "74f483fc0783a612a4de8f69e6a75eee9bfe3994675b604e94eb883d0a709988"
	epInt    = "c956d9f40aed746611fea5b0add4f3c8d8b9fd60d7b41489298332be2f19cf90"
	ep1Ports = `{"Value":{"com.docker.network.portmap":[` +
		`{"Proto":6,"IP":"172.17.0.2","Port":82,"HostIP":"0.0.0.0","HostPort":9000,"HostPortEnd":9000},` +
		`{"Proto":17,"IP":"172.17.0.2","Port":81,"HostIP":"127.0.0.1","HostPort":49154,"HostPortEnd":49154},` +
		`{"Proto":6,"IP":"172.17.0.2","Port":80,"HostIP":"0.0.0.0","HostPort":8080,"HostPortEnd":8080}]}}`
)

func TestActivateAndCapabilities(t *testing.T) {
	s := NewServer(newFakeEngine())
	mustPost(t, s, "Plugin.Activate", "", `{"Implements":["NetworkDriver"]}`)
	mustPost(t, s, "NetworkDriver.GetCapabilities", "", `{"Scope":"local","ConnectivityScope":"local"}`)
	mustPost(t, s, "NetworkDriver.DiscoverNew", `{"DiscoveryType":1,"DiscoveryData":{"Address":"10.0.0.1"}}`, `{}`)
	mustPost(t, s, "NetworkDriver.DiscoverDelete", `{"DiscoveryType":1,"DiscoveryData":{}}`, `{}`)
}

// TestDockerLifecycle replays, in Docker's order, what dockerd sent for
//
//	docker network create -d nftbridge -o ...enable_icc=false -o ...mtu=1400 n1
//	docker network create -d nftbridge --internal n2
//	docker run -d --network n1 -p 8080:80 -p 127.0.0.1::81/udp -p 9000-9005:82 --expose 99 ...
//	docker network connect n2 c1; docker rm -f c1; docker network rm n1 n2
//
// and checks every answer and what reached the engine.
func TestDockerLifecycle(t *testing.T) {
	f := newFakeEngine()
	var seen []Request
	s := NewServer(f, WithObserver(func(r Request) { seen = append(seen, r) }))

	mustPost(t, s, "NetworkDriver.CreateNetwork", fixture(t, "CreateNetwork"), `{}`)
	n := f.networks[net1]
	if n == nil || n.Name != "docker-2b7d96618eb3" || n.Subnet != netip.MustParsePrefix("172.17.0.0/16") ||
		n.Gateway != netip.MustParseAddr("172.17.0.1") || n.ICC || !n.Masquerade || n.Internal || n.MTU != 1400 ||
		n.Options["com.docker.network.bridge.enable_icc"] != "false" {
		t.Fatalf("network from CreateNetwork: %+v", n)
	}
	mustPost(t, s, "NetworkDriver.CreateNetwork", fixture(t, "CreateNetwork-internal"), `{}`)
	if n := f.networks[netInt]; n == nil || !n.Internal || n.Subnet.String() != "172.18.0.0/16" {
		t.Fatalf("internal network: %+v", n)
	}

	mustPost(t, s, "NetworkDriver.CreateEndpoint", fixture(t, "CreateEndpoint"), `{}`)
	if ep := f.endpoints[ep1]; ep == nil || ep.Addr.String() != "172.17.0.2" || ep.Network != n.Name {
		t.Fatalf("endpoint from CreateEndpoint: %+v", ep)
	}
	mustPost(t, s, "NetworkDriver.Join", fixture(t, "Join"),
		`{"InterfaceName":{"SrcName":"nbp74f483fc07","DstPrefix":"eth"},"Gateway":"172.17.0.1"}`)
	mustPost(t, s, "NetworkDriver.ProgramExternalConnectivity", fixture(t, "ProgramExternalConnectivity"), `{}`)
	var specs []string
	for _, spec := range f.specs {
		specs = append(specs, spec.String())
	}
	if want := []string{"9000-9005:82/tcp", "127.0.0.1::81/udp", "8080:80/tcp"}; !slices.Equal(specs, want) {
		t.Errorf("published specs %v, want %v", specs, want)
	}
	mustPost(t, s, "NetworkDriver.EndpointOperInfo", fixture(t, "EndpointOperInfo"), ep1Ports)

	// Connected to the internal network too: no gateway from there.
	mustPost(t, s, "NetworkDriver.CreateEndpoint", fixture(t, "CreateEndpoint-internal"), `{}`)
	mustPost(t, s, "NetworkDriver.Join", fixture(t, "Join-internal"), `{"InterfaceName":{"SrcName":"nbpc956d9f40a","DstPrefix":"eth"}}`)
	mustPost(t, s, "NetworkDriver.EndpointOperInfo", `{"NetworkID":"`+netInt+`","EndpointID":"`+epInt+`"}`, `{"Value":{}}`)

	mustPost(t, s, "NetworkDriver.RevokeExternalConnectivity", fixture(t, "RevokeExternalConnectivity"), `{}`)
	if ep := f.endpoints[ep1]; len(ep.Ports) != 0 {
		t.Errorf("ports after RevokeExternalConnectivity: %v", ep.Ports)
	}
	mustPost(t, s, "NetworkDriver.RevokeExternalConnectivity", fixture(t, "RevokeExternalConnectivity"), `{}`) // idempotent
	mustPost(t, s, "NetworkDriver.Leave", fixture(t, "Leave"), `{}`)
	mustPost(t, s, "NetworkDriver.DeleteEndpoint", fixture(t, "DeleteEndpoint"), `{}`)
	mustPost(t, s, "NetworkDriver.Leave", `{"NetworkID":"`+netInt+`","EndpointID":"`+epInt+`"}`, `{}`)
	mustPost(t, s, "NetworkDriver.DeleteEndpoint", `{"NetworkID":"`+netInt+`","EndpointID":"`+epInt+`"}`, `{}`)
	mustPost(t, s, "NetworkDriver.DeleteNetwork", fixture(t, "DeleteNetwork"), `{}`)
	mustPost(t, s, "NetworkDriver.DeleteNetwork", `{"NetworkID":"`+netInt+`"}`, `{}`)
	if len(f.networks) != 0 || len(f.endpoints) != 0 {
		t.Errorf("left after deleting everything: networks %v, endpoints %v", sortedIDs(f.networks), sortedIDs(f.endpoints))
	}

	wantCalls := []string{
		"CreateNetwork docker-2b7d96618eb3", "CreateNetwork docker-80a74bd6eeb5",
		"CreateDriverEndpoint 74f483fc0783 172.17.0.2/16", "JoinEndpoint 74f483fc0783", "SetEndpointPorts 74f483fc0783 3",
		"CreateDriverEndpoint c956d9f40aed 172.18.0.2/16", "JoinEndpoint c956d9f40aed",
		"SetEndpointPorts 74f483fc0783 0", "LeaveEndpoint 74f483fc0783", "RemoveEndpoint 74f483fc0783",
		"LeaveEndpoint c956d9f40aed", "RemoveEndpoint c956d9f40aed",
		"RemoveNetwork 2b7d96618eb3 force=true", "RemoveNetwork 80a74bd6eeb5 force=true",
	}
	if !slices.Equal(f.calls, wantCalls) {
		t.Errorf("engine calls:\n%s\nwant:\n%s", strings.Join(f.calls, "\n"), strings.Join(wantCalls, "\n"))
	}
	checkObserved(t, seen)
}

// checkObserved: every request was reported with its IDs and no error.
func checkObserved(t *testing.T, seen []Request) {
	t.Helper()
	if len(seen) != 17 {
		t.Errorf("observer saw %d requests, want 17", len(seen))
	}
	for _, r := range seen {
		if r.Err != nil || r.Status != 200 || r.NetworkID == "" {
			t.Errorf("observed %+v: want status 200, no error and the network ID", r)
		}
		if r.Method == "NetworkDriver.Join" && r.EndpointID == "" {
			t.Errorf("observed Join without its endpoint ID: %+v", r)
		}
	}
}

func TestCreateNetworkOptions(t *testing.T) {
	f := newFakeEngine()
	s := NewServer(f)
	body := edit(t, "CreateNetwork", func(req map[string]any) {
		req["Options"].(map[string]any)["com.docker.network.generic"] = map[string]any{
			"com.docker.network.bridge.name":                 "br-test",
			"com.docker.network.bridge.enable_ip_masquerade": "false",
			"com.docker.network.bridge.host_binding_ipv4":    "127.0.0.1",
			"com.docker.network.container_iface_prefix":      "nb",
		}
		req["IPv4Data"].([]any)[0].(map[string]any)["AuxAddresses"] = map[string]any{"router": "172.17.0.9/16"}
	})
	mustPost(t, s, "NetworkDriver.CreateNetwork", body, `{}`)
	n := f.networks[net1]
	if n.Bridge != "br-test" || n.Masquerade || !n.ICC || n.HostIP.String() != "127.0.0.1" {
		t.Errorf("network: %+v", n)
	}
	mustPost(t, s, "NetworkDriver.CreateEndpoint", fixture(t, "CreateEndpoint"), `{}`)
	mustPost(t, s, "NetworkDriver.Join", fixture(t, "Join"),
		`{"InterfaceName":{"SrcName":"nbp74f483fc07","DstPrefix":"nb"},"Gateway":"172.17.0.1"}`)
}

func TestSpecFromBinding(t *testing.T) {
	for _, c := range []struct {
		in   portBinding
		want string
	}{
		{portBinding{Proto: 6, Port: 80, HostPort: 8080, HostPortEnd: 8080}, "8080:80/tcp"},
		{portBinding{Proto: 6, Port: 80, HostIP: "0.0.0.0", HostPort: 8080}, "8080:80/tcp"},
		{portBinding{Proto: 17, Port: 53, HostIP: "127.0.0.1"}, "127.0.0.1::53/udp"},
		{portBinding{Proto: 6, Port: 82, HostPort: 9000, HostPortEnd: 9005}, "9000-9005:82/tcp"},
		{portBinding{Proto: 6, Port: 80}, "80/tcp"},
	} {
		spec, err := specFromBinding(c.in)
		if err != nil || spec.String() != c.want {
			t.Errorf("specFromBinding(%+v) = %s, %v; want %s", c.in, spec, err, c.want)
		}
		if _, err := ports.ParseSpec(c.want); err != nil {
			t.Errorf("%s does not parse back: %v", c.want, err)
		}
	}
}

// TestStaleEndpointNote: an endpoint Docker forgot and the engine removed is
// reported to the observer.
func TestStaleEndpointNote(t *testing.T) {
	f := joinedEngine(t)
	var seen Request
	s := NewServer(f, WithObserver(func(r Request) { seen = r }))
	body := edit(t, "CreateEndpoint", setField("EndpointID", strings.Repeat("1", 64)))
	mustPost(t, s, "NetworkDriver.CreateEndpoint", body, `{}`)
	if len(seen.Notes) != 1 || !strings.Contains(seen.Notes[0], "docker-74f483fc0783") {
		t.Errorf("notes %q, want one naming the stale endpoint", seen.Notes)
	}
}
