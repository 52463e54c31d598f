package bridge

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nftbridge/nftbridge/bridge/link"
	"github.com/nftbridge/nftbridge/nft"
	"github.com/nftbridge/nftbridge/ports"
)

// fakeFirewall keeps the programmed elements, as "set: element" lines,
// and applies Update as the kernel would: element deletes and adds.
type fakeFirewall struct {
	elements   map[string]bool
	programmed string // sorted lines of elements; "" when nothing was ever programmed
	exists     bool
	fail       error
}

func elementLines(rs *nft.Ruleset) map[string]bool {
	out := map[string]bool{}
	for _, s := range rs.Sets {
		for _, e := range s.Elements {
			out[s.Name+": "+nft.ElementString(s, e)] = true
		}
	}
	return out
}

func (f *fakeFirewall) render() {
	lines := make([]string, 0, len(f.elements))
	for l := range f.elements {
		lines = append(lines, l)
	}
	slices.Sort(lines)
	f.programmed = strings.Join(lines, "\n")
}

func (f *fakeFirewall) Reconcile(rs *nft.Ruleset) error {
	if f.fail != nil {
		return f.fail
	}
	f.elements, f.exists = elementLines(rs), true
	f.render()
	return nil
}

func (f *fakeFirewall) Update(old, next *nft.Ruleset) error {
	if f.fail != nil {
		return f.fail
	}
	for l := range elementLines(old) {
		delete(f.elements, l)
	}
	for l := range elementLines(next) {
		f.elements[l] = true
	}
	f.render()
	return nil
}

func (f *fakeFirewall) TableExists() (bool, error) { return f.exists, nil }

// fakeLinks records interfaces by name.
type fakeLinks struct {
	links     map[string]string // name → kind
	netns     map[string]bool
	failOn    string
	forgotten []string // ForgetAddress calls, in order
}

func newFakeLinks() *fakeLinks {
	return &fakeLinks{links: map[string]string{}, netns: map[string]bool{"c1": true, "c2": true, "c3": true}}
}

func (l *fakeLinks) EnsureBridge(name string, _ netip.Prefix, _ int) error {
	if l.failOn == name {
		return errors.New("fake: bridge failure")
	}
	l.links[name] = "bridge"
	return nil
}
func (l *fakeLinks) CreateBridges(specs []link.BridgeSpec) ([]string, error) {
	var created []string
	for _, s := range specs {
		if err := l.EnsureBridge(s.Name, s.Addr, s.MTU); err != nil {
			return created, &link.BridgeError{Bridge: s.Name, Err: err}
		}
		created = append(created, s.Name)
	}
	return created, nil
}
func (l *fakeLinks) DeleteBridge(name string) error { delete(l.links, name); return nil }
func (l *fakeLinks) LinkExists(name string) (bool, error) {
	_, ok := l.links[name]
	return ok, nil
}
func (l *fakeLinks) CreateVeth(cfg link.VethConfig) error {
	if l.failOn == cfg.HostName {
		return errors.New("fake: veth failure")
	}
	l.links[cfg.HostName] = "veth@" + cfg.Bridge
	return nil
}
func (l *fakeLinks) AttachVeth(host, bridge string, _ bool) error {
	l.links[host] = "veth@" + bridge
	return nil
}
func (l *fakeLinks) DeleteVeth(name string) error { delete(l.links, name); return nil }
func (l *fakeLinks) NetNSExists(spec string) error {
	if !l.netns[spec] {
		return fmt.Errorf("network namespace %q does not exist", spec)
	}
	return nil
}
func (l *fakeLinks) EnableRouteLocalnet(string) error { return nil }
func (l *fakeLinks) EnableBridgeNetfilter(bridge string) error {
	if l.failOn == "netfilter:"+bridge {
		return errors.New("fake: br_netfilter not loaded")
	}
	l.links[bridge] = "bridge+netfilter"
	return nil
}
func (l *fakeLinks) FlushConntrack(uint8, uint16, netip.Addr) (uint, error) { return 0, nil }
func (l *fakeLinks) ForgetAddress(addr netip.Addr) (uint, error) {
	l.forgotten = append(l.forgotten, addr.String())
	return 0, nil
}

// Inventory of the fake: a bridge is never "ready", so restore always
// re-ensures it; veths are on the bridge their kind names.
func (l *fakeLinks) Inventory() (link.Inventory, error) { return fakeInventory{l}, nil }

type fakeInventory struct{ l *fakeLinks }

func (i fakeInventory) Exists(name string) bool                    { _, ok := i.l.links[name]; return ok }
func (i fakeInventory) BridgeReady(string, netip.Prefix, int) bool { return false }
func (i fakeInventory) VethOn(name, bridge string) bool            { return i.l.links[name] == "veth@"+bridge }
func (i fakeInventory) RouteLocalnet(string) bool                  { return false }

type fakeHost struct{}

func (fakeHost) Prepare() ([]string, error) { return nil, nil }

type harness struct {
	eng   *Engine
	fw    *fakeFirewall
	links *fakeLinks
	path  string
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	h := &harness{fw: &fakeFirewall{}, links: newFakeLinks(), path: filepath.Join(t.TempDir(), "state.db")}
	n := 0
	eng, err := New(Config{StorePath: h.path, Firewall: h.fw, Links: h.links, Host: fakeHost{},
		Now: func() time.Time { return time.Unix(1700000000, 0) },
		IDs: func() string { n++; return fmt.Sprintf("%02x%062x", n, n) }})
	if err != nil {
		t.Fatal(err)
	}
	h.eng = eng
	return h
}

// snapshot is everything a failed operation must leave alone.
func (h *harness) snapshot(t *testing.T) string {
	t.Helper()
	db, err := os.ReadFile(h.path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return fmt.Sprintf("%x\n%s\n%v", db, h.fw.programmed, h.links.links)
}

func mustSpec(t *testing.T, s string) ports.Spec {
	t.Helper()
	spec, err := ports.ParseSpec(s)
	if err != nil {
		t.Fatal(err)
	}
	return spec
}

func (h *harness) setup(t *testing.T) {
	t.Helper()
	a := DefaultNetworkOptions("a")
	a.Subnet = netip.MustParsePrefix("172.20.0.0/16")
	if _, err := h.eng.CreateNetwork(a); err != nil {
		t.Fatal(err)
	}
	internal := DefaultNetworkOptions("int")
	internal.Internal = true
	if _, err := h.eng.CreateNetwork(internal); err != nil {
		t.Fatal(err)
	}
	for _, ep := range []EndpointOptions{{Network: "a", NetNS: "c1"}, {Network: "a", NetNS: "c2"}, {Network: "int", NetNS: "c3"}} {
		if _, err := h.eng.AddEndpoint(ep); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := h.eng.Publish("c1", []ports.Spec{mustSpec(t, "8080:80")}); err != nil {
		t.Fatal(err)
	}
}

func TestEngineHappyPath(t *testing.T) {
	h := newHarness(t)
	h.setup(t)
	for _, want := range []string{`"nb-010000000000" . "nb-010000000000" : accept`, `tcp . 8080 : 172.20.0.2 . 80`, `172.20.0.3 . "nb-010000000000"`} {
		if !strings.Contains(h.fw.programmed, want) {
			t.Errorf("programmed ruleset lacks %q:\n%s", want, h.fw.programmed)
		}
	}
	if err := h.eng.RemoveEndpoint("c1"); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(h.fw.programmed, "8080") {
		t.Errorf("port still programmed after endpoint rm")
	}
	// No connection may outlive its endpoint: the forward chain accepts
	// later packets without deciding again.
	if want := []string{"172.20.0.2"}; !slices.Equal(h.links.forgotten, want) {
		t.Errorf("conntrack forgotten after endpoint rm: %v, want %v", h.links.forgotten, want)
	}
	if err := h.eng.RemoveNetwork("a", true); err != nil {
		t.Fatal(err)
	}
	if err := h.eng.RemoveNetwork("int", true); err != nil {
		t.Fatal(err)
	}
	if len(h.links.forgotten) != 3 || h.links.forgotten[1] != "172.20.0.3" {
		t.Errorf("conntrack forgotten after removing both networks: %v, want c1, c2 and c3's addresses", h.links.forgotten)
	}
	if h.fw.programmed != "" {
		t.Errorf("after teardown the ruleset is not the cleaned one:\n%s", h.fw.programmed)
	}
	if len(h.links.links) != 0 {
		t.Errorf("links left behind: %v", h.links.links)
	}
}

// TestEngineBadInput: each mistake names the bad value and leaves the store
// file, the programmed ruleset and the links exactly as they were.
func TestEngineBadInput(t *testing.T) {
	cases := []struct {
		name, want string
		op         func(e *Engine) error
	}{
		{"duplicate network", `"a" is already in use`, func(e *Engine) error {
			_, err := e.CreateNetwork(DefaultNetworkOptions("a"))
			return err
		}},
		{"overlapping subnet", "172.20.0.0/16", func(e *Engine) error {
			o := DefaultNetworkOptions("b")
			o.Subnet = netip.MustParsePrefix("172.20.128.0/17")
			_, err := e.CreateNetwork(o)
			return err
		}},
		{"long bridge name", "bridge-name-too-long", func(e *Engine) error {
			o := DefaultNetworkOptions("b")
			o.Bridge = "bridge-name-too-long"
			_, err := e.CreateNetwork(o)
			return err
		}},
		{"bad network name", "bad name", func(e *Engine) error {
			_, err := e.CreateNetwork(DefaultNetworkOptions("bad name"))
			return err
		}},
		{"gateway outside subnet", "10.0.0.1", func(e *Engine) error {
			o := DefaultNetworkOptions("b")
			o.Subnet, o.Gateway = netip.MustParsePrefix("172.21.0.0/16"), netip.MustParseAddr("10.0.0.1")
			_, err := e.CreateNetwork(o)
			return err
		}},
		{"unknown network", `"nope"`, func(e *Engine) error {
			_, err := e.AddEndpoint(EndpointOptions{Network: "nope", NetNS: "c1", Name: "x"})
			return err
		}},
		{"missing netns", `"ghost"`, func(e *Engine) error {
			_, err := e.AddEndpoint(EndpointOptions{Network: "a", NetNS: "ghost"})
			return err
		}},
		{"address taken", "172.20.0.2", func(e *Engine) error {
			_, err := e.AddEndpoint(EndpointOptions{Network: "a", NetNS: "c3", Name: "x", Addr: netip.MustParseAddr("172.20.0.2")})
			return err
		}},
		{"taken host port names holder", `endpoint "c1"`, func(e *Engine) error {
			_, err := e.Publish("c2", []ports.Spec{mustSpec(t, "8080:81")})
			return err
		}},
		{"publish on internal", `"int" is internal`, func(e *Engine) error {
			_, err := e.Publish("c3", []ports.Spec{mustSpec(t, "9000:80")})
			return err
		}},
		{"all or nothing publish", "8080", func(e *Engine) error {
			_, err := e.Publish("c2", []ports.Spec{mustSpec(t, "9001:80"), mustSpec(t, "8080:80")})
			return err
		}},
		{"unknown endpoint", `"nope"`, func(e *Engine) error { return e.RemoveEndpoint("nope") }},
		{"unpublish nothing", "9999", func(e *Engine) error {
			_, err := e.Unpublish("c1", []ports.Spec{mustSpec(t, "9999")})
			return err
		}},
		{"network with endpoints", "--force", func(e *Engine) error { return e.RemoveNetwork("a", false) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.setup(t)
			before := h.snapshot(t)
			err := tc.op(h.eng)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v, want one containing %q", err, tc.want)
			}
			if after := h.snapshot(t); after != before {
				t.Errorf("state changed by a refused operation")
			}
		})
	}
}

// A kernel failure undoes the links already made and leaves the store alone.
func TestEngineFirewallFailureRollsBack(t *testing.T) {
	h := newHarness(t)
	h.setup(t)
	before := h.snapshot(t)
	h.fw.fail = errors.New("netlink: boom")
	_, err := h.eng.AddEndpoint(EndpointOptions{Network: "a", NetNS: "c3", Name: "x"})
	if err == nil || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("error = %v", err)
	}
	o := DefaultNetworkOptions("b")
	if _, err := h.eng.CreateNetwork(o); err == nil {
		t.Fatal("create network succeeded with a failing firewall")
	}
	if after := h.snapshot(t); !bytes.Equal([]byte(after), []byte(before)) {
		t.Errorf("a failed kernel batch changed the store or left links:\nbefore %s\nafter  %s", before[len(before)-200:], after[len(after)-200:])
	}
}

// TestICCOffNeedsBridgeNetfilter: a network with ICC off whose bridge cannot
// get bridge netfilter is refused, naming the reason, and leaves nothing
// behind; with it, only that bridge gets it.
func TestICCOffNeedsBridgeNetfilter(t *testing.T) {
	h := newHarness(t)
	h.setup(t)
	before := h.snapshot(t)
	o := DefaultNetworkOptions("quiet")
	o.ICC, o.Bridge = false, "nb-quiet"
	h.links.failOn = "netfilter:nb-quiet"
	_, err := h.eng.CreateNetwork(o)
	if err == nil || !strings.Contains(err.Error(), `"quiet"`) || !strings.Contains(err.Error(), "ICC off needs bridge netfilter") {
		t.Fatalf("error = %v, want one naming the network and bridge netfilter", err)
	}
	if after := h.snapshot(t); after != before {
		t.Errorf("a refused network changed the store or left links")
	}
	h.links.failOn = ""
	if _, err := h.eng.CreateNetwork(o); err != nil {
		t.Fatal(err)
	}
	for name, kind := range h.links.links {
		if (kind == "bridge+netfilter") != (name == "nb-quiet") {
			t.Errorf("link %s is %s: only nb-quiet has ICC off", name, kind)
		}
	}
}
