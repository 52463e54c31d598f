package link

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

func TestCreateBridges(t *testing.T) {
	host := newTestNS(t)
	m := NewIn(host.ns)
	defer func() {
		if t.Failed() {
			host.dump(t)
		}
	}()
	// More bridges than one pipelined round, one with an MTU, and one that
	// exists already (adopted, not created).
	var specs []BridgeSpec
	for i := range 2*pipelineDepth + 3 {
		specs = append(specs, BridgeSpec{Name: fmt.Sprintf("nbt-b%d", i),
			Addr: netip.MustParsePrefix(fmt.Sprintf("172.30.%d.1/24", i))})
	}
	specs[5].MTU = 1400
	if err := m.EnsureBridge("nbt-b7", netip.MustParsePrefix("10.9.9.9/24"), 0); err != nil {
		t.Fatal(err)
	}
	created, err := m.CreateBridges(specs)
	if err != nil {
		t.Fatalf("CreateBridges: %v", err)
	}
	if len(created) != len(specs)-1 || slices.Contains(created, "nbt-b7") {
		t.Errorf("created %d bridges (%v), want all but nbt-b7", len(created), created)
	}
	for _, i := range []int{0, 5, 7, pipelineDepth, len(specs) - 1} {
		s := specs[i]
		mtu := 1500
		if s.MTU != 0 {
			mtu = s.MTU
		}
		checkBridge(t, host, s.Name, mtu, []string{s.Addr.String()})
		if v, err := m.GetSysctl("net/ipv4/conf/" + s.Name + "/route_localnet"); err != nil || v != "1" {
			t.Errorf("%s route_localnet = %q, %v; want 1", s.Name, v, err)
		}
	}
}

func TestCreateBridgesFailure(t *testing.T) {
	host := newTestNS(t)
	m := NewIn(host.ns)
	specs := []BridgeSpec{
		{Name: "nbt-ok0", Addr: netip.MustParsePrefix("172.30.0.1/24")},
		{Name: "nbt-bad", Addr: netip.MustParsePrefix("172.30.1.1/24"), MTU: 70000},
		{Name: "nbt-ok1", Addr: netip.MustParsePrefix("172.30.2.1/24")},
	}
	_, err := m.CreateBridges(specs)
	var be *BridgeError
	if !errors.As(err, &be) || be.Bridge != "nbt-bad" || !strings.Contains(err.Error(), `create bridge "nbt-bad"`) {
		t.Fatalf("CreateBridges = %v, want a BridgeError for nbt-bad", err)
	}
	for _, s := range specs {
		if host.link(t, s.Name) != nil {
			t.Errorf("a failed CreateBridges left %s behind", s.Name)
		}
	}
	_, err = m.CreateBridges([]BridgeSpec{{Name: "nbt-v6", Addr: netip.MustParsePrefix("fd00::1/64")}})
	if err == nil || !strings.Contains(err.Error(), "not an IPv4 address") {
		t.Errorf("CreateBridges with an IPv6 address = %v", err)
	}
}
