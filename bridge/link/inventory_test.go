package link

import (
	"net/netip"
	"testing"
)

// TestInventory: one dump answers what restore asks of every bridge and
// veth, and agrees with what EnsureBridge and CreateVeth left.
func TestInventory(t *testing.T) {
	bridgeAddr := netip.MustParsePrefix("172.30.0.1/16")
	f := newVethFixture(t)
	cfg := f.config("nbt-inv0")
	if err := f.m.CreateVeth(cfg); err != nil {
		t.Fatal(err)
	}
	inv, err := f.m.Inventory()
	if err != nil {
		t.Fatal(err)
	}
	if !inv.Exists(cfg.Bridge) || !inv.Exists("nbt-inv0") || inv.Exists("nbt-none") {
		t.Errorf("Exists is wrong")
	}
	if !inv.BridgeReady(cfg.Bridge, bridgeAddr, 0) {
		t.Errorf("bridge %s with %s not ready", cfg.Bridge, bridgeAddr)
	}
	if inv.BridgeReady(cfg.Bridge, netip.MustParsePrefix("10.99.99.1/24"), 0) || inv.BridgeReady(cfg.Bridge, bridgeAddr, 1280) {
		t.Errorf("BridgeReady ignores the address or the MTU")
	}
	if inv.BridgeReady("nbt-inv0", bridgeAddr, 0) {
		t.Errorf("a veth counted as a bridge")
	}
	if inv.RouteLocalnet(cfg.Bridge) {
		t.Errorf("RouteLocalnet of a new bridge is true")
	}
	if err := f.m.EnableRouteLocalnet(cfg.Bridge); err != nil {
		t.Fatal(err)
	}
	if inv, err = f.m.Inventory(); err != nil {
		t.Fatal(err)
	}
	if !inv.RouteLocalnet(cfg.Bridge) || inv.RouteLocalnet("nbt-none") {
		t.Errorf("RouteLocalnet is wrong after EnableRouteLocalnet")
	}
	if !inv.VethOn("nbt-inv0", cfg.Bridge) || inv.VethOn("nbt-inv0", "other") || inv.VethOn("nbt-none", cfg.Bridge) {
		t.Errorf("VethOn is wrong")
	}
}
