package nft

import (
	"net/netip"
	"testing"
)

// mustUpdate updates from old to new or fails the test.
func mustUpdate(t testing.TB, a *Applier, old, new *Ruleset) {
	t.Helper()
	if err := a.Update(old, new); err != nil {
		t.Fatalf("Update: %v", err)
	}
}

// checkRuleCount checks that the kernel has exactly rs's rules.
func checkRuleCount(t testing.TB, ns *testNetNS, rs *Ruleset) {
	t.Helper()
	if got := ruleLines(ns.nft(t, "list", "table", "ip", TableName)); got != rs.RuleCount() {
		t.Errorf("kernel has %d rules, ruleset %d", got, rs.RuleCount())
	}
}

// changedDesired is applyTestDesired(3, 2, 2) changed in every way Update
// must carry: a network added and one removed, ICC and masquerade toggled
// (verdict map data, interval set), an endpoint gone, a port's container
// port changed (map data), a port added on a bound host address.
func changedDesired() Desired {
	d := applyTestDesired(3, 2, 2)
	d.Networks = append(d.Networks[1:], applyTestNetwork(5, true, false, true))
	d.Networks[0].ICC = !d.Networks[0].ICC
	d.Networks[1].Masquerade = !d.Networks[1].Masquerade
	var eps []Endpoint
	for _, e := range d.Endpoints {
		if e.Bridge != "br-0" && e.Addr != applyTestEndpoint(1, 1).Addr {
			eps = append(eps, e)
		}
	}
	d.Endpoints = append(eps, applyTestEndpoint(5, 0))
	var ports []Port
	for _, p := range d.Ports {
		if p.Addr.As4()[1] != 16 && p.Addr != applyTestEndpoint(1, 1).Addr {
			ports = append(ports, p)
		}
	}
	ports[0].ContainerPort = 8888
	d.Ports = append(ports, Port{Proto: ProtoUDP, HostIP: netip.MustParseAddr("10.1.2.3"), HostPort: 5353,
		Addr: applyTestEndpoint(5, 0).Addr, ContainerPort: 53})
	return d
}

// TestUpdate: element changes in one batch reach exactly the new ruleset,
// in both directions, without touching a rule; repeating an update whose
// deletes are already gone and whose adds are already there succeeds.
func TestUpdate(t *testing.T) {
	ns := newTestNetNS(t)
	a := ns.applier(t)
	before := mustCompile(t, applyTestDesired(3, 2, 2))
	after := mustCompile(t, changedDesired())
	mustReconcile(t, a, before)
	rulesBefore := ns.nft(t, "-t", "list", "table", "ip", TableName)

	mustUpdate(t, a, before, after)
	checkParity(t, ns, after)
	checkRuleCount(t, ns, after)
	if got := ns.nft(t, "-t", "list", "table", "ip", TableName); got != rulesBefore {
		t.Errorf("Update changed more than elements:\n%s", lineDiff(rulesBefore, got))
	}

	mustUpdate(t, a, before, after) // deletes already missing, adds already present
	checkParity(t, ns, after)

	mustUpdate(t, a, after, before)
	checkParity(t, ns, before)
	checkRuleCount(t, ns, before)
}

// TestUpdateToleratesDrift: an element an administrator already deleted,
// or already added, does not fail the batch.
func TestUpdateToleratesDrift(t *testing.T) {
	ns := newTestNetNS(t)
	a := ns.applier(t)
	old := mustCompile(t, applyTestDesired(2, 1, 1))
	new := mustCompile(t, changedFrom(applyTestDesired(2, 1, 1)))
	mustReconcile(t, a, old)
	ns.nft(t, "delete", "element", "ip", TableName, SetEndpointHomes, `{ 172.17.0.2 . "br-1" }`)
	ns.nft(t, "delete", "element", "ip", TableName, SetMasqSubnets, "{ 172.17.0.0/16 }")
	ns.nft(t, "add", "element", "ip", TableName, SetEndpointHomes, `{ 172.20.0.2 . "br-4" }`)
	ns.nft(t, "add", "element", "ip", TableName, MapPortDNAT, "{ tcp . 20000 : 172.20.0.2 . 80 }")
	mustUpdate(t, a, old, new)
	checkParity(t, ns, new)
}

// changedFrom drops network 1 of d and adds network 4 with one endpoint
// publishing tcp 20000 -> 80.
func changedFrom(d Desired) Desired {
	d.Networks = []Network{d.Networks[0], applyTestNetwork(4, true, false, true)}
	var eps []Endpoint
	for _, e := range d.Endpoints {
		if e.Bridge == "br-0" {
			eps = append(eps, e)
		}
	}
	d.Endpoints = append(eps, applyTestEndpoint(4, 0))
	var ports []Port
	for _, p := range d.Ports {
		if p.Addr.As4()[1] == 16 {
			ports = append(ports, p)
		}
	}
	d.Ports = append(ports, Port{Proto: ProtoTCP, HostPort: 20000, Addr: applyTestEndpoint(4, 0).Addr, ContainerPort: 80})
	return d
}

// TestUpdateNothingToDo sends no batch: it works even without a table.
func TestUpdateNothingToDo(t *testing.T) {
	ns := newTestNetNS(t)
	a := ns.applier(t)
	rs := mustCompile(t, applyTestDesired(1, 1, 1))
	mustUpdate(t, a, rs, mustCompile(t, applyTestDesired(1, 1, 1)))
	if ok, err := a.TableExists(); err != nil || ok {
		t.Errorf("TableExists = %v, %v after an empty Update", ok, err)
	}
	if err := a.Update(rs, mustCompile(t, applyTestDesired(2, 1, 1))); !IsNotFound(err) {
		t.Errorf("Update without a table: %v, want not found", err)
	}
}

// TestUpdateReplacesOverlapping: an element replaced by one that overlaps
// it (a subnet narrowed; a port moved from all host addresses to one) is
// deleted before the new one is added, in the same batch.
func TestUpdateReplacesOverlapping(t *testing.T) {
	ns := newTestNetNS(t)
	a := ns.applier(t)
	d := applyTestDesired(2, 1, 1)
	old := mustCompile(t, d)
	d.Networks[0].Subnet = netip.MustParsePrefix("172.16.0.0/24")
	d.Ports[0].HostIP = netip.MustParseAddr("127.0.0.1")
	new := mustCompile(t, d)
	mustReconcile(t, a, old)
	mustUpdate(t, a, old, new)
	checkParity(t, ns, new)
	mustUpdate(t, a, new, old)
	checkParity(t, ns, old)
}

// TestUpdateWithoutDestroy: on kernels before 6.3 (no NFT_MSG_DESTROYSETELEM)
// Update falls back to plain deletes. They work, and an element missing
// from the kernel fails the batch with ENOENT, changing nothing, so the
// caller can reconcile.
func TestUpdateWithoutDestroy(t *testing.T) {
	ns := newTestNetNS(t)
	a := ns.applier(t)
	a.noDestroy = true
	old := mustCompile(t, applyTestDesired(2, 1, 1))
	next := mustCompile(t, changedFrom(applyTestDesired(2, 1, 1)))
	mustReconcile(t, a, old)
	mustUpdate(t, a, old, next)
	checkParity(t, ns, next)
	mustUpdate(t, a, next, old)
	ns.nft(t, "delete", "element", "ip", TableName, SetEndpointHomes, `{ 172.17.0.2 . "br-1" }`)
	before := ns.nft(t, "list", "ruleset")
	if err := a.Update(old, next); err == nil || !IsNotFound(err) {
		t.Fatalf("Update deleting a missing element with plain deletes: %v, want ENOENT", err)
	}
	if after := ns.nft(t, "list", "ruleset"); after != before {
		t.Errorf("the failed batch changed the ruleset:\n%s", lineDiff(before, after))
	}
	mustReconcile(t, a, next)
	checkParity(t, ns, next)
}
