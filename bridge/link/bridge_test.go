package link

import (
	"net"
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
)

func TestCheckIfName(t *testing.T) {
	tests := []struct {
		name, wantErr string
	}{
		{"nb-web", ""},
		{"abcdefghijklmno", ""},
		{"abcdefghijklmnop", "is 16 bytes long; Linux allows at most 15"},
		{"", "name is empty"},
		{"a/b", "not a valid interface name"},
		{"a b", "not a valid interface name"},
		{"..", "not a valid interface name"},
	}
	for _, tc := range tests {
		err := checkIfName("bridge", tc.name)
		if (err == nil) != (tc.wantErr == "") || err != nil && !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("checkIfName(%q) = %v, want error containing %q", tc.name, err, tc.wantErr)
		}
	}
}

func TestEnsureBridge(t *testing.T) {
	host := newTestNS(t)
	m := NewIn(host.ns)
	const name = "nbt-br0"
	defer func() {
		if t.Failed() {
			host.dump(t)
		}
	}()

	if ok, err := m.BridgeExists(name); err != nil || ok {
		t.Fatalf("BridgeExists before create = %v, %v", ok, err)
	}
	addr := netip.MustParsePrefix("172.30.0.1/16")
	if err := m.EnsureBridge(name, addr, 1400); err != nil {
		t.Fatalf("EnsureBridge: %v", err)
	}
	checkBridge(t, host, name, 1400, []string{"172.30.0.1/16"})

	// Idempotent: same call, same result.
	if err := m.EnsureBridge(name, addr, 1400); err != nil {
		t.Fatalf("EnsureBridge again: %v", err)
	}
	checkBridge(t, host, name, 1400, []string{"172.30.0.1/16"})

	// Adopting a bridge with other addresses leaves exactly ours.
	br := host.link(t, name)
	extra := &netlink.Addr{IPNet: &net.IPNet{IP: net.ParseIP("10.9.9.9").To4(), Mask: net.CIDRMask(24, 32)}}
	if err := host.h.AddrAdd(br, extra); err != nil {
		t.Fatal(err)
	}
	if err := m.EnsureBridge(name, netip.MustParsePrefix("172.30.0.254/16"), 0); err != nil {
		t.Fatalf("EnsureBridge with a new address: %v", err)
	}
	checkBridge(t, host, name, 1400, []string{"172.30.0.254/16"})

	if ok, err := m.BridgeExists(name); err != nil || !ok {
		t.Fatalf("BridgeExists = %v, %v", ok, err)
	}
	if err := m.DeleteBridge(name); err != nil {
		t.Fatalf("DeleteBridge: %v", err)
	}
	if host.link(t, name) != nil {
		t.Fatal("bridge still exists after DeleteBridge")
	}
	if err := m.DeleteBridge(name); err != nil {
		t.Fatalf("DeleteBridge of a missing bridge: %v", err)
	}
}

func checkBridge(t *testing.T, ns *testNS, name string, mtu int, addrs []string) {
	t.Helper()
	br := ns.link(t, name)
	if br == nil {
		t.Fatalf("bridge %s does not exist", name)
	}
	if br.Type() != "bridge" {
		t.Fatalf("%s is a %s", name, br.Type())
	}
	if br.Attrs().Flags&net.FlagUp == 0 {
		t.Errorf("bridge %s is not up", name)
	}
	if br.Attrs().MTU != mtu {
		t.Errorf("bridge %s MTU = %d, want %d", name, br.Attrs().MTU, mtu)
	}
	if got := ns.addrs(t, br); !reflect.DeepEqual(got, addrs) {
		t.Errorf("bridge %s addresses = %v, want %v", name, got, addrs)
	}
	ns.checkIPv6Off(t, name)
}

func TestEnsureBridgeErrors(t *testing.T) {
	host := newTestNS(t)
	m := NewIn(host.ns)
	other := netlink.NewVeth(netlink.LinkAttrs{Name: "nbt-other", TxQLen: -1})
	other.PeerName = "nbt-other-p"
	if err := host.h.LinkAdd(other); err != nil {
		t.Fatal(err)
	}
	addr := netip.MustParsePrefix("172.30.0.1/16")
	tests := []struct {
		name    string
		addr    netip.Prefix
		wantErr string
	}{
		{"nbt-this-name-is-long", addr, `"nbt-this-name-is-long" is 21 bytes long`},
		{"nbt-other", addr, `link "nbt-other" exists and is a veth, not a bridge`},
		{"nbt-br1", netip.MustParsePrefix("fd00::1/64"), "not an IPv4 address"},
	}
	for _, tc := range tests {
		err := m.EnsureBridge(tc.name, tc.addr, 0)
		if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("EnsureBridge(%q, %s) = %v, want error containing %q", tc.name, tc.addr, err, tc.wantErr)
		}
	}
	if err := m.DeleteBridge("nbt-other"); err == nil {
		t.Error("DeleteBridge deleted a veth")
	}
	if host.link(t, "nbt-other") == nil {
		t.Error("the veth is gone")
	}
	if host.link(t, "nbt-br1") != nil {
		t.Error("a failed EnsureBridge left nbt-br1 behind")
	}
}
