package driver

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/nftbridge/nftbridge/bridge"
	"github.com/nftbridge/nftbridge/bridge/store"
	"github.com/nftbridge/nftbridge/ports"
)

// fakeEngine keeps networks and endpoints by Docker ID and records every
// call that would change something.
type fakeEngine struct {
	networks  map[string]*store.Network
	endpoints map[string]*store.Endpoint
	calls     []string
	specs     []ports.Spec // the last SetEndpointPorts
	fail      error        // returned by every changing call when set
}

func newFakeEngine() *fakeEngine {
	return &fakeEngine{networks: map[string]*store.Network{}, endpoints: map[string]*store.Endpoint{}}
}

// state is everything a refused request must leave alone.
func (f *fakeEngine) state() string {
	b, _ := json.Marshal(struct {
		N map[string]*store.Network
		E map[string]*store.Endpoint
		C []string
	}{f.networks, f.endpoints, f.calls})
	return string(b)
}

func (f *fakeEngine) record(call string) error {
	f.calls = append(f.calls, call)
	return f.fail
}

func (f *fakeEngine) CreateNetwork(opts bridge.NetworkOptions) (*store.Network, error) {
	if err := f.record("CreateNetwork " + opts.Name); err != nil {
		return nil, err
	}
	n := &store.Network{Name: opts.Name, ID: opts.ID, Bridge: opts.Bridge, Subnet: opts.Subnet,
		Gateway: opts.Gateway, Internal: opts.Internal, ICC: opts.ICC, Masquerade: opts.Masquerade,
		HostIP: opts.HostIP, MTU: opts.MTU, Options: opts.Options}
	f.networks[opts.ID] = n
	return n.Clone(), nil
}

func (f *fakeEngine) RemoveNetwork(ref string, force bool) error {
	if _, ok := f.networks[ref]; !ok {
		return &bridge.NotFoundError{Kind: "network", Name: ref}
	}
	if err := f.record(fmt.Sprintf("RemoveNetwork %s force=%v", short(ref), force)); err != nil {
		return err
	}
	delete(f.networks, ref)
	return nil
}

func (f *fakeEngine) CreateDriverEndpoint(opts bridge.DriverEndpointOptions) (*store.Endpoint, []string, error) {
	n, ok := f.networks[opts.Network]
	if !ok {
		return nil, nil, fmt.Errorf("create endpoint %s on network %s: %w", opts.ID, opts.Network, &bridge.NotFoundError{Kind: "network", Name: opts.Network})
	}
	if err := f.record("CreateDriverEndpoint " + short(opts.ID) + " " + opts.Addr.String()); err != nil {
		return nil, nil, err
	}
	var pruned []string
	for id, old := range f.endpoints {
		if old.Network == n.Name && old.Addr == opts.Addr.Addr() {
			delete(f.endpoints, id)
			pruned = append(pruned, old.Name)
		}
	}
	ep := &store.Endpoint{Name: bridge.DriverEndpointName(opts.ID), ID: opts.ID, Network: n.Name,
		Addr: opts.Addr.Addr(), MAC: opts.MAC, HostVeth: "nbv" + opts.ID[:10], PeerName: "nbp" + opts.ID[:10]}
	f.endpoints[opts.ID] = ep
	return ep.Clone(), pruned, nil
}

func (f *fakeEngine) RemoveEndpoint(ref string) error {
	if _, ok := f.endpoints[ref]; !ok {
		return &bridge.NotFoundError{Kind: "endpoint", Name: ref}
	}
	if err := f.record("RemoveEndpoint " + short(ref)); err != nil {
		return err
	}
	delete(f.endpoints, ref)
	return nil
}

func (f *fakeEngine) JoinEndpoint(ref string) (*store.Endpoint, *store.Network, error) {
	ep, n, err := f.DriverEndpoint(ref)
	if err != nil {
		return nil, nil, err
	}
	if err := f.record("JoinEndpoint " + short(ref)); err != nil {
		return nil, nil, err
	}
	return ep, n, nil
}

func (f *fakeEngine) LeaveEndpoint(ref string) error {
	if _, _, err := f.DriverEndpoint(ref); err != nil {
		return err
	}
	return f.record("LeaveEndpoint " + short(ref))
}

// SetEndpointPorts picks 49153 upwards for ports left open.
func (f *fakeEngine) SetEndpointPorts(ref string, specs []ports.Spec) ([]ports.Binding, error) {
	ep, ok := f.endpoints[ref]
	if !ok {
		return nil, &bridge.NotFoundError{Kind: "endpoint", Name: ref}
	}
	if err := f.record(fmt.Sprintf("SetEndpointPorts %s %d", short(ref), len(specs))); err != nil {
		return nil, err
	}
	f.specs = specs
	ep.Ports = nil
	var out []ports.Binding
	for i, s := range specs {
		b := ports.Binding{Proto: s.Proto, HostIP: s.HostIP, HostPort: s.HostPorts.First, ContainerPort: s.ContainerPorts.First}
		if b.HostPort == 0 {
			b.HostPort = uint16(49153 + i)
		}
		out = append(out, b)
		ep.Ports = append(ep.Ports, store.Port{Proto: b.Proto.String(), HostIP: b.HostIP, HostPort: b.HostPort, ContainerPort: b.ContainerPort})
	}
	return out, nil
}

func (f *fakeEngine) DriverEndpoint(ref string) (*store.Endpoint, *store.Network, error) {
	ep, ok := f.endpoints[ref]
	if !ok {
		return nil, nil, &bridge.NotFoundError{Kind: "endpoint", Name: ref}
	}
	for _, n := range f.networks {
		if n.Name == ep.Network {
			return ep.Clone(), n.Clone(), nil
		}
	}
	return nil, nil, fmt.Errorf("endpoint %q: network %q is missing", ep.Name, ep.Network)
}

// fixture reads a request dockerd 20.10.24 (Debian's docker.io) sent to
// the plugin, captured through a logging proxy.
func fixture(t *testing.T, name string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// edit decodes a fixture, lets change modify it and encodes it again.
func edit(t *testing.T, name string, change func(req map[string]any)) string {
	t.Helper()
	var req map[string]any
	if err := json.Unmarshal([]byte(fixture(t, name)), &req); err != nil {
		t.Fatal(err)
	}
	change(req)
	out, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// answer is one response.
type answer struct {
	status int
	body   string
}

// post sends body to /method and checks the response is plugin JSON.
func post(t *testing.T, s *Server, method, body string) answer {
	t.Helper()
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/"+method, strings.NewReader(body)))
	if ct := rec.Header().Get("Content-Type"); ct != ContentType {
		t.Errorf("%s: Content-Type %q, want %q", method, ct, ContentType)
	}
	if !json.Valid(rec.Body.Bytes()) {
		t.Errorf("%s: response is not JSON: %q", method, rec.Body.String())
	}
	return answer{status: rec.Code, body: strings.TrimSpace(rec.Body.String())}
}

// mustPost sends a request that must succeed with exactly want.
func mustPost(t *testing.T, s *Server, method, body, want string) {
	t.Helper()
	got := post(t, s, method, body)
	if got.status != http.StatusOK || got.body != want {
		t.Fatalf("%s: got %d %s\nwant 200 %s", method, got.status, got.body, want)
	}
}

func sortedIDs[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }
