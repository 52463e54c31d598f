package bridge

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/nftbridge/nftbridge/ports"
)

const (
	dockerNet = "2b7d96618eb332ea5977048f23e58d44254c6dc48beec7ea31c42fac3f6dac56"
	dockerEP  = "74f483fc0783a612a4de8f69e6a75eee9bfe3994675b604e94eb883d0a709988"
	dockerEP2 = "c956d9f40aed746611fea5b0add4f3c8d8b9fd60d7b41489298332be2f19cf90"
)

// dockerSetup adds to h.setup a network as the driver creates it and one
// Docker endpoint on it at Docker's address.
func (h *harness) dockerSetup(t *testing.T) {
	t.Helper()
	h.setup(t)
	opts := DefaultNetworkOptions("docker-" + dockerNet[:12])
	opts.ID, opts.Subnet, opts.Gateway = dockerNet, netip.MustParsePrefix("172.19.0.0/16"), netip.MustParseAddr("172.19.0.1")
	if _, err := h.eng.CreateNetwork(opts); err != nil {
		t.Fatal(err)
	}
	ep, pruned, err := h.eng.CreateDriverEndpoint(DriverEndpointOptions{Network: dockerNet, ID: dockerEP, Addr: netip.MustParsePrefix("172.19.0.5/16")})
	if err != nil || len(pruned) > 0 {
		t.Fatal(err, pruned)
	}
	if ep.Name != "docker-74f483fc0783" || ep.Addr.String() != "172.19.0.5" || ep.NetNS != "" {
		t.Fatalf("endpoint: %+v", ep)
	}
}

func TestDriverEndpointLifecycle(t *testing.T) {
	h := newHarness(t)
	h.dockerSetup(t)
	if !strings.Contains(h.fw.programmed, `172.19.0.5 . "nb-2b7d96618eb3"`) {
		t.Errorf("endpoint home not programmed:\n%s", h.fw.programmed)
	}
	if _, ok := h.links.links["nbv74f483fc07"]; ok {
		t.Errorf("veth exists before Join")
	}
	ep, n, err := h.eng.JoinEndpoint(dockerEP)
	if err != nil {
		t.Fatal(err)
	}
	if ep.PeerName != "nbp74f483fc07" || n.Gateway.String() != "172.19.0.1" || h.links.links["nbv74f483fc07"] != "veth@nb-2b7d96618eb3" {
		t.Errorf("join: peer %q gateway %s links %v", ep.PeerName, n.Gateway, h.links.links)
	}
	specs := []ports.Spec{mustSpec(t, "8081:80"), mustSpec(t, "127.0.0.1::53/udp")}
	for range 2 { // Docker may program twice: the second call replaces, never conflicts
		bindings, err := h.eng.SetEndpointPorts(dockerEP, specs)
		if err != nil {
			t.Fatal(err)
		}
		if len(bindings) != 2 || bindings[0].String() != "0.0.0.0:8081->80/tcp" || bindings[1].HostPort < 49153 {
			t.Errorf("bindings %v", bindings)
		}
	}
	if !strings.Contains(h.fw.programmed, "tcp . 8081 : 172.19.0.5 . 80") {
		t.Errorf("port not programmed:\n%s", h.fw.programmed)
	}
	if _, err := h.eng.SetEndpointPorts(dockerEP, nil); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(h.fw.programmed, "8081") {
		t.Errorf("port still programmed after revoke")
	}
	if err := h.eng.LeaveEndpoint(dockerEP); err != nil {
		t.Fatal(err)
	}
	if _, ok := h.links.links["nbv74f483fc07"]; ok {
		t.Errorf("veth left after Leave")
	}
	if err := h.eng.LeaveEndpoint(dockerEP); err != nil { // veth already gone
		t.Errorf("second Leave: %v", err)
	}
	if err := h.eng.RemoveEndpoint(dockerEP); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(h.fw.programmed, "172.19.0.5") {
		t.Errorf("endpoint still programmed after remove")
	}
}

// TestDriverRefusals: each mistake names the bad value and leaves the
// store, the ruleset and the links exactly as they were.
func TestDriverRefusals(t *testing.T) {
	h := newHarness(t)
	h.dockerSetup(t)
	if _, _, err := h.eng.JoinEndpoint(dockerEP); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		do   func() error
		want string
	}{
		{"prefix length", func() error { return h.create(dockerEP2, "172.19.0.6/24") }, "/16"},
		{"outside subnet", func() error { return h.create(dockerEP2, "10.9.0.6/16") }, "10.9.0.6"},
		{"gateway address", func() error { return h.create(dockerEP2, "172.19.0.1/16") }, "172.19.0.1"},
		{"ID in use", func() error { return h.create(dockerEP, "172.19.0.7/16") }, dockerEP[:12]},
		{"unknown network", func() error {
			_, _, err := h.eng.CreateDriverEndpoint(DriverEndpointOptions{Network: strings.Repeat("ab", 32), ID: dockerEP2, Addr: netip.MustParsePrefix("172.19.0.6/16")})
			return err
		}, strings.Repeat("ab", 32)},
		{"IPv6", func() error { return h.create(dockerEP2, "fd00::6/64") }, "fd00::6/64"},
		{"bad MAC", func() error {
			_, _, err := h.eng.CreateDriverEndpoint(DriverEndpointOptions{Network: dockerNet, ID: dockerEP2, Addr: netip.MustParsePrefix("172.19.0.6/16"), MAC: "zz"})
			return err
		}, `"zz"`},
		{"join a CLI endpoint", func() error { _, _, err := h.eng.JoinEndpoint("c1"); return err }, "endpoint add"},
		{"leave a CLI endpoint", func() error { return h.eng.LeaveEndpoint("c2") }, "endpoint add"},
		{"join unknown", func() error { _, _, err := h.eng.JoinEndpoint(dockerEP2); return err }, dockerEP2},
		{"port taken", func() error {
			_, err := h.eng.SetEndpointPorts(dockerEP, []ports.Spec{mustSpec(t, "8080:80")})
			return err
		}, `endpoint "c1"`},
		{"ports on internal", func() error {
			_, err := h.eng.SetEndpointPorts("c3", []ports.Spec{mustSpec(t, "8082:80")})
			return err
		}, "internal"},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := h.snapshot(t)
			err := c.do()
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("got %v, want an error naming %q", err, c.want)
			}
			if after := h.snapshot(t); after != before {
				t.Errorf("a refused call changed something")
			}
		})
	}
}

func (h *harness) create(id, addr string) error {
	_, _, err := h.eng.CreateDriverEndpoint(DriverEndpointOptions{Network: dockerNet, ID: id, Addr: netip.MustParsePrefix(addr)})
	return err
}

// TestDriverNetworkRemoveForce: Docker deletes a network only once it has
// no endpoints, so the driver removes stale records with it.
func TestDriverNetworkRemoveForce(t *testing.T) {
	h := newHarness(t)
	h.dockerSetup(t)
	if _, _, err := h.eng.JoinEndpoint(dockerEP); err != nil {
		t.Fatal(err)
	}
	if err := h.eng.RemoveNetwork(dockerNet, true); err != nil {
		t.Fatal(err)
	}
	for _, link := range []string{"nb-2b7d96618eb3", "nbv74f483fc07"} {
		if _, ok := h.links.links[link]; ok {
			t.Errorf("%s left after network removal", link)
		}
	}
	if _, _, err := h.eng.DriverEndpoint(dockerEP); !IsNotFound(err) {
		t.Errorf("endpoint after network removal: %v", err)
	}
}

// TestDriverPrunesStaleEndpoints: endpoints Docker forgot (dockerd died with
// the container) are removed when Docker hands their address out again or
// when their veth is gone; `endpoint add` endpoints never are.
func TestDriverPrunesStaleEndpoints(t *testing.T) {
	h := newHarness(t)
	h.dockerSetup(t)
	if _, _, err := h.eng.JoinEndpoint(dockerEP); err != nil {
		t.Fatal(err)
	}
	if _, err := h.eng.SetEndpointPorts(dockerEP, []ports.Spec{mustSpec(t, "8081:80")}); err != nil {
		t.Fatal(err)
	}
	delete(h.links.links, "nbv74f483fc07") // the container's namespace died
	_, pruned, err := h.eng.CreateDriverEndpoint(DriverEndpointOptions{Network: dockerNet, ID: dockerEP2, Addr: netip.MustParsePrefix("172.19.0.6/16")})
	if err != nil || len(pruned) != 1 || pruned[0] != "docker-74f483fc0783" {
		t.Fatalf("pruned %v, %v; want the endpoint whose veth is gone", pruned, err)
	}
	if strings.Contains(h.fw.programmed, "8081") || strings.Contains(h.fw.programmed, "172.19.0.5") {
		t.Errorf("stale endpoint still programmed:\n%s", h.fw.programmed)
	}

	// Created, never joined, forgotten: Docker's IPAM hands its address out again.
	third := strings.Repeat("9", 64)
	_, pruned, err = h.eng.CreateDriverEndpoint(DriverEndpointOptions{Network: dockerNet, ID: third, Addr: netip.MustParsePrefix("172.19.0.6/16")})
	if err != nil || len(pruned) != 1 || pruned[0] != DriverEndpointName(dockerEP2) {
		t.Fatalf("pruned %v, %v; want the endpoint holding 172.19.0.6", pruned, err)
	}

	// An `endpoint add` endpoint's address is refused, not taken over.
	before := h.snapshot(t)
	_, _, err = h.eng.CreateDriverEndpoint(DriverEndpointOptions{Network: "a", ID: dockerEP, Addr: netip.MustParsePrefix("172.20.0.2/16")})
	if err == nil || !strings.Contains(err.Error(), "172.20.0.2") {
		t.Errorf("Docker endpoint on a CLI endpoint's address: %v, want a refusal naming it", err)
	}
	if h.snapshot(t) != before {
		t.Errorf("refused endpoint changed something")
	}
}
