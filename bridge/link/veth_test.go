package link

import (
	"net"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

const testBridge = "nbt-br0"

// vethFixture is a "host" namespace with a bridge and a "container"
// namespace, both created by the test.
type vethFixture struct {
	host, container *testNS
	m               *Manager
}

func newVethFixture(t *testing.T) *vethFixture {
	t.Helper()
	f := &vethFixture{host: newTestNS(t), container: newTestNS(t)}
	f.m = NewIn(f.host.ns)
	if err := f.m.EnsureBridge(testBridge, netip.MustParsePrefix("172.30.0.1/16"), 0); err != nil {
		t.Fatalf("EnsureBridge: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			f.host.dump(t)
			f.container.dump(t)
		}
	})
	return f
}

func (f *vethFixture) config(hostName string) VethConfig {
	return VethConfig{
		Bridge: testBridge, HostName: hostName, NetNS: f.container.name,
		Addr: netip.MustParsePrefix("172.30.0.2/16"), Gateway: netip.MustParseAddr("172.30.0.1"),
		MTU: 1400, Hairpin: true, MAC: net.HardwareAddr{0x02, 0x42, 0xac, 0x1e, 0x00, 0x02},
	}
}

func TestCreateVethIntoNamespace(t *testing.T) {
	f := newVethFixture(t)
	if err := f.m.CreateVeth(f.config("nb00000001")); err != nil {
		t.Fatalf("CreateVeth: %v", err)
	}

	hostEnd := f.host.link(t, "nb00000001")
	if hostEnd == nil {
		t.Fatal("host veth nb00000001 missing")
	}
	if hostEnd.Attrs().MasterIndex != f.host.link(t, testBridge).Attrs().Index {
		t.Errorf("host veth is not attached to %s", testBridge)
	}
	if hostEnd.Attrs().Flags&net.FlagUp == 0 {
		t.Error("host veth is not up")
	}
	protinfo, err := f.host.h.LinkGetProtinfo(hostEnd)
	if err != nil {
		t.Fatal(err)
	}
	if !protinfo.Hairpin {
		t.Error("hairpin mode is off on the bridge port")
	}

	eth0 := f.container.link(t, "eth0")
	if eth0 == nil {
		t.Fatalf("eth0 missing in the container; links: %v", f.container.linkNames(t))
	}
	if eth0.Attrs().Flags&net.FlagUp == 0 || eth0.Attrs().MTU != 1400 {
		t.Errorf("eth0 flags %v MTU %d, want up and 1400", eth0.Attrs().Flags, eth0.Attrs().MTU)
	}
	if got := eth0.Attrs().HardwareAddr.String(); got != "02:42:ac:1e:00:02" {
		t.Errorf("eth0 MAC = %s", got)
	}
	if got := f.container.addrs(t, eth0); !reflect.DeepEqual(got, []string{"172.30.0.2/16"}) {
		t.Errorf("eth0 addresses = %v", got)
	}
	if lo := f.container.link(t, "lo"); lo.Attrs().Flags&net.FlagUp == 0 {
		t.Error("lo is not up in the container")
	}
	checkDefaultRoute(t, f.container, eth0, "172.30.0.1")
	// Our table filters IPv4 only: IPv6 on either end would be a way
	// around it (ICC off, say, over link-local addresses).
	f.host.checkIPv6Off(t, "nb00000001")
	f.container.checkIPv6Off(t, "eth0")

	if err := f.m.DeleteVeth("nb00000001"); err != nil {
		t.Fatalf("DeleteVeth: %v", err)
	}
	if f.host.link(t, "nb00000001") != nil || f.container.link(t, "eth0") != nil {
		t.Error("DeleteVeth left an end behind")
	}
	if err := f.m.DeleteVeth("nb00000001"); err != nil {
		t.Errorf("DeleteVeth of a missing veth: %v", err)
	}
}

func checkDefaultRoute(t *testing.T, ns *testNS, dev netlink.Link, gw string) {
	t.Helper()
	routes, err := retryDump(func() ([]netlink.Route, error) { return ns.h.RouteList(dev, netlink.FAMILY_V4) })
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range routes {
		isDefault := r.Dst == nil || r.Dst.IP.IsUnspecified() && prefixOf(r.Dst).Bits() == 0
		if isDefault && r.Gw.String() == gw {
			return
		}
	}
	t.Errorf("no default route via %s on %s; routes: %v", gw, dev.Attrs().Name, routes)
}

func TestCreateVethByPathAndIfName(t *testing.T) {
	f := newVethFixture(t)
	cfg := f.config("nb00000002")
	cfg.NetNS = "/run/netns/" + f.container.name
	cfg.IfName = "eth1"
	cfg.Gateway = netip.Addr{}
	cfg.MAC = nil
	if err := f.m.CreateVeth(cfg); err != nil {
		t.Fatalf("CreateVeth: %v", err)
	}
	if f.container.link(t, "eth1") == nil {
		t.Fatalf("eth1 missing; links: %v", f.container.linkNames(t))
	}
}

func TestCreateVethNameClashLeavesNothing(t *testing.T) {
	f := newVethFixture(t)
	if err := f.m.CreateVeth(f.config("nb00000003")); err != nil {
		t.Fatal(err)
	}
	hostBefore, containerBefore := f.host.linkNames(t), f.container.linkNames(t)

	err := f.m.CreateVeth(f.config("nb00000004")) // eth0 exists in the container
	if err == nil || !strings.Contains(err.Error(), `"eth0" already exists`) {
		t.Fatalf("CreateVeth with a clashing eth0 = %v, want an error naming eth0", err)
	}
	err = f.m.CreateVeth(f.config("nb00000003")) // host name exists
	if err == nil || !strings.Contains(err.Error(), `"nb00000003" already exists`) {
		t.Fatalf("CreateVeth with a clashing host name = %v, want an error naming nb00000003", err)
	}
	if got := f.host.linkNames(t); !reflect.DeepEqual(got, hostBefore) {
		t.Errorf("host links changed: %v, want %v", got, hostBefore)
	}
	if got := f.container.linkNames(t); !reflect.DeepEqual(got, containerBefore) {
		t.Errorf("container links changed: %v, want %v", got, containerBefore)
	}
}

// TestCreateVethRollback makes the last step (the default route) fail after
// the pair exists, because the namespace already has a default route.
// Nothing may be left behind.
func TestCreateVethRollback(t *testing.T) {
	f := newVethFixture(t)
	blackhole := &netlink.Route{Type: unix.RTN_BLACKHOLE, Dst: &net.IPNet{IP: net.IPv4zero, Mask: net.CIDRMask(0, 32)}}
	if err := f.container.h.RouteAdd(blackhole); err != nil {
		t.Fatalf("add blackhole default route: %v", err)
	}
	hostBefore, containerBefore := f.host.linkNames(t), f.container.linkNames(t)
	err := f.m.CreateVeth(f.config("nb00000005"))
	if err == nil || !strings.Contains(err.Error(), "add default route via 172.30.0.1") {
		t.Fatalf("CreateVeth = %v, want a route error", err)
	}
	if got := f.host.linkNames(t); !reflect.DeepEqual(got, hostBefore) {
		t.Errorf("host links after failure: %v, want %v", got, hostBefore)
	}
	if got := f.container.linkNames(t); !reflect.DeepEqual(got, containerBefore) {
		t.Errorf("container links after failure: %v, want %v", got, containerBefore)
	}
}

func TestCreateVethValidation(t *testing.T) {
	f := newVethFixture(t)
	tests := []struct {
		change  func(*VethConfig)
		wantErr string
	}{
		{func(c *VethConfig) { c.HostName = "nb-much-too-long-name" }, "is 21 bytes long"},
		{func(c *VethConfig) { c.Bridge = "nbt-missing" }, `bridge "nbt-missing" does not exist`},
		{func(c *VethConfig) { c.NetNS = "nbtest-missing" }, `network namespace "nbtest-missing" does not exist`},
		{func(c *VethConfig) { c.Gateway = netip.MustParseAddr("10.0.0.1") }, "gateway 10.0.0.1 is outside"},
		{func(c *VethConfig) { c.Addr = netip.Prefix{} }, "not an IPv4 address"},
		{func(c *VethConfig) { c.Gateway = c.Addr.Addr() }, "gateway 172.30.0.2 is the container's own address"},
	}
	before := f.host.linkNames(t)
	for _, tc := range tests {
		cfg := f.config("nb00000006")
		tc.change(&cfg)
		if err := f.m.CreateVeth(cfg); err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("CreateVeth(%+v) = %v, want error containing %q", cfg, err, tc.wantErr)
		}
	}
	if got := f.host.linkNames(t); !reflect.DeepEqual(got, before) {
		t.Errorf("host links changed: %v, want %v", got, before)
	}
}

// TestCreateVethDriverMode leaves the peer in the host namespace, as
// Docker's remote driver protocol wants, and re-attaches it to a new bridge.
func TestCreateVethDriverMode(t *testing.T) {
	f := newVethFixture(t)
	cfg := VethConfig{Bridge: testBridge, HostName: "nb00000007", PeerName: "nbp00000007", Hairpin: true}
	if err := f.m.CreateVeth(cfg); err != nil {
		t.Fatalf("CreateVeth: %v", err)
	}
	peer := f.host.link(t, "nbp00000007")
	if peer == nil || peer.Attrs().MasterIndex != 0 {
		t.Fatalf("peer %v should exist in the host namespace, unattached", peer)
	}
	if err := f.m.EnsureBridge("nbt-br1", netip.MustParsePrefix("172.31.0.1/16"), 0); err != nil {
		t.Fatal(err)
	}
	if err := f.m.AttachVeth("nb00000007", "nbt-br1", true); err != nil {
		t.Fatalf("AttachVeth: %v", err)
	}
	if got, want := f.host.link(t, "nb00000007").Attrs().MasterIndex, f.host.link(t, "nbt-br1").Attrs().Index; got != want {
		t.Errorf("host veth master index %d, want nbt-br1's %d", got, want)
	}
	if err := f.m.DeleteVeth("nb00000007"); err != nil {
		t.Fatal(err)
	}
	if names := f.host.linkNames(t); slices.Contains(names, "nbp00000007") {
		t.Errorf("peer survived DeleteVeth: %v", names)
	}
}
