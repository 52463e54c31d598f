package nft

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/nftables"
	"golang.org/x/sys/unix"
)

// mustReconcile reconciles rs or fails the test.
func mustReconcile(t testing.TB, a *Applier, rs *Ruleset) {
	t.Helper()
	if err := a.Reconcile(rs); err != nil {
		t.Fatalf("Reconcile: %v", err)
	}
}

// withUserRule is RenderTerse(rs) with rule in the user chain.
func withUserRule(rs *Ruleset, rule string) string {
	return strings.Replace(RenderTerse(rs), "\tchain user {\n\t}", "\tchain user {\n\t\t"+rule+"\n\t}", 1)
}

// TestReconcileIdempotentKeepsUserChain: reconciling twice gives the same
// table; an administrator's rule in the user chain survives a reconcile;
// after `nft flush ruleset` a reconcile rebuilds everything.
func TestReconcileIdempotentKeepsUserChain(t *testing.T) {
	ns := newTestNetNS(t)
	a := ns.applier(t)
	rs := mustCompile(t, applyTestDesired(3, 2, 2))
	mustReconcile(t, a, rs)
	first := ns.nft(t, "-t", "list", "table", "ip", TableName)
	mustReconcile(t, a, rs)
	if again := ns.nft(t, "-t", "list", "table", "ip", TableName); again != first {
		t.Errorf("second Reconcile changed the table:\n%s", lineDiff(first, again))
	}
	checkParity(t, ns, rs)

	ns.nft(t, "add", "rule", "ip", TableName, ChainUser, "iifname", `"x"`, "drop")
	mustReconcile(t, a, rs)
	if got, want := ns.nft(t, "-t", "list", "table", "ip", TableName), withUserRule(rs, `iifname "x" drop`); got != want {
		t.Errorf("the user chain's rule did not survive Reconcile:\n%s", lineDiff(want, got))
	}

	ns.nft(t, "flush", "ruleset")
	if ok, err := a.TableExists(); err != nil || ok {
		t.Fatalf("TableExists after flush ruleset = %v, %v; want false", ok, err)
	}
	mustReconcile(t, a, rs)
	checkParity(t, ns, rs)
}

// TestReconcileRemovesStaleAndUpgrades: chains and sets of our table that
// the ruleset no longer has are deleted (never the user chain), a chain
// only after the map elements that jump to it; a set whose
// type changed and a chain whose priority changed are re-created in the
// same batch, even though old rules still use them.
func TestReconcileRemovesStaleAndUpgrades(t *testing.T) {
	ns := newTestNetNS(t)
	a := ns.applier(t)
	ns.nftFile(t, `table ip nftbridge {
	set bridges { type ipv4_addr; elements = { 10.0.0.1 } }
	set old_set { type ipv4_addr; }
	chain old_a { ip daddr @old_set drop; }
	map old_dispatch { type ifname : verdict; elements = { "br-x" : jump old_a } }
	chain old_chain { jump old_a; }
	chain user { iifname "admin0" accept; }
	chain forward {
		type filter hook forward priority 10; policy accept;
		ip saddr @bridges jump old_chain
	}
}
`)
	rs := mustCompile(t, applyTestDesired(2, 1, 1))
	mustReconcile(t, a, rs)
	if got, want := ns.nft(t, "-t", "list", "table", "ip", TableName), withUserRule(rs, `iifname "admin0" accept`); got != want {
		t.Errorf("after upgrade:\n%s", lineDiff(want, got))
	}
}

// TestReconcileUpgradesEarlierLayouts: a table written by an earlier
// nftbridge (testdata/upgrade, each file the trace world as that version
// rendered it, elements and an admin rule included) is brought to today's
// layout by one Reconcile, the admin's rule kept.
func TestReconcileUpgradesEarlierLayouts(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "upgrade", "*.nft"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no earlier layouts in testdata/upgrade (%v)", err)
	}
	rs := traceRuleset(t)
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			old, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			ns := newTestNetNS(t)
			ns.nftFile(t, string(old))
			ns.nft(t, "add", "rule", "ip", TableName, ChainUser, "iifname", `"admin0"`, "accept")
			mustReconcile(t, ns.applier(t), rs)
			// The kernel lists sets and chains in the order they were
			// made, so new ones come last: compare them as blocks.
			got := listingBlocks(ns.nft(t, "-t", "list", "table", "ip", TableName))
			want := listingBlocks(withUserRule(rs, `iifname "admin0" accept`))
			if !slices.Equal(got, want) {
				t.Errorf("after upgrade:\n%s", lineDiff(strings.Join(want, "\n"), strings.Join(got, "\n")))
			}
			for _, s := range rs.Sets {
				if got, want := kernelElementStrings(t, ns, s), modelElementStrings(s); !slices.Equal(got, want) {
					t.Errorf("set %s:\n%s", s.Name, lineDiff(strings.Join(want, "\n"), strings.Join(got, "\n")))
				}
			}
		})
	}
}

// listingBlocks splits a table listing into its set, map and chain blocks,
// sorted.
func listingBlocks(listing string) []string {
	body := strings.TrimPrefix(strings.TrimSpace(listing), "table ip "+TableName+" {")
	var blocks []string
	for _, b := range strings.Split(strings.TrimSuffix(body, "}"), "\n\n") {
		blocks = append(blocks, strings.TrimSpace(b))
	}
	slices.Sort(blocks)
	return blocks
}

// TestReconcileRefusesWhatItCannotChange: an administrator's rule in the
// user chain that uses one of our sets pins the set's definition; the
// batch fails with a message saying so, and nothing changes.
func TestReconcileRefusesWhatItCannotChange(t *testing.T) {
	ns := newTestNetNS(t)
	a := ns.applier(t)
	ns.nftFile(t, "table ip nftbridge {\n\tset bridges { type ipv4_addr; }\n"+
		"\tchain user { ip saddr @bridges drop; }\n}\n")
	before := ns.nft(t, "list", "ruleset")
	err := a.Reconcile(mustCompile(t, applyTestDesired(1, 1, 1)))
	if err == nil {
		t.Fatal("Reconcile succeeded although the user chain pins set bridges")
	}
	for _, want := range []string{"reconcile table ip nftbridge", "rolled back", "NFT_MSG_DELSET", "re-created set bridges"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	t.Logf("error: %v", err)
	if after := ns.nft(t, "list", "ruleset"); after != before {
		t.Errorf("a failed Reconcile changed the ruleset:\n%s", lineDiff(before, after))
	}
}

// TestFailedBatchChangesNothing: a batch the kernel refuses midway (a jump
// to a missing chain; overlapping ranges) leaves the ruleset exactly as it
// was, and the error names the failing operation.
func TestFailedBatchChangesNothing(t *testing.T) {
	ns := newTestNetNS(t)
	a := ns.applier(t)
	good := mustCompile(t, applyTestDesired(2, 2, 2))
	mustReconcile(t, a, good)
	before := ns.nft(t, "list", "ruleset")

	badJump := mustCompile(t, applyTestDesired(3, 2, 2))
	fwd := badJump.Chain(ChainForward)
	fwd.Rules = append(fwd.Rules, Rule{Comment: "BAD", Exprs: []Expr{Verdict{Kind: Jump, Chain: "missing"}}})
	err := a.Reconcile(badJump)
	if err == nil || !IsNotFound(err) || !strings.Contains(err.Error(), "NFT_MSG_NEWRULE") {
		t.Errorf("Reconcile with a jump to a missing chain: %v; want ENOENT naming NFT_MSG_NEWRULE", err)
	}

	overlap := mustCompile(t, applyTestDesired(2, 2, 2))
	dnat := overlap.Set(MapPortDNAT)
	clash := dnat.Elements[0]
	clash.Data = []Value{AddrValue(netip.MustParseAddr("172.16.99.99")), clash.Data[1]}
	dnat.Elements = append(dnat.Elements, clash)
	if err := a.Reconcile(overlap); err == nil || !strings.Contains(err.Error(), "NFT_MSG_NEWSETELEM") {
		t.Errorf("Reconcile with one DNAT key mapped twice: %v; want a NFT_MSG_NEWSETELEM error", err)
	}

	masq := mustCompile(t, applyTestDesired(2, 2, 2))
	wider := masq.Set(SetMasqSubnets)
	wider.Elements = append(wider.Elements, Element{Key: []Value{PrefixValue(netip.MustParsePrefix("172.16.128.0/17"))}})
	if err := a.Update(good, masq); err == nil {
		t.Errorf("Update with overlapping masquerade subnets succeeded")
	} else {
		t.Logf("overlap error: %v", err)
	}
	if after := ns.nft(t, "list", "ruleset"); after != before {
		t.Errorf("failed batches changed the ruleset:\n%s", lineDiff(before, after))
	}
	checkParity(t, ns, good)
}

// TestDeleteAndTableExists: Delete removes the table (user chain
// included) and is idempotent.
func TestDeleteAndTableExists(t *testing.T) {
	ns := newTestNetNS(t)
	a := ns.applier(t)
	if ok, err := a.TableExists(); err != nil || ok {
		t.Fatalf("TableExists in a fresh namespace = %v, %v", ok, err)
	}
	mustReconcile(t, a, mustCompile(t, applyTestDesired(1, 1, 1)))
	if ok, err := a.TableExists(); err != nil || !ok {
		t.Fatalf("TableExists after Reconcile = %v, %v", ok, err)
	}
	for range 2 {
		if err := a.Delete(); err != nil {
			t.Fatalf("Delete: %v", err)
		}
	}
	if ok, err := a.TableExists(); err != nil || ok {
		t.Fatalf("TableExists after Delete = %v, %v", ok, err)
	}
	if out := ns.nft(t, "list", "ruleset"); out != "" {
		t.Errorf("ruleset after Delete:\n%s", out)
	}
	if _, err := a.ReadSet(SetBridges); !IsNotFound(err) {
		t.Errorf("ReadSet after Delete: %v, want not found", err)
	}
}

// TestUpdateRejectsStructureChange: rulesets that differ in more than
// elements are refused with ErrStructureChanged, before any I/O.
func TestUpdateRejectsStructureChange(t *testing.T) {
	a := &Applier{table: &nftables.Table{Name: TableName}} // no connection: this path does no I/O
	old := mustCompile(t, applyTestDesired(1, 1, 1))
	new := mustCompile(t, applyTestDesired(1, 1, 1))
	new.Chain(ChainForward).Rules = new.Chain(ChainForward).Rules[1:]
	if err := a.Update(old, new); !errors.Is(err, ErrStructureChanged) {
		t.Errorf("Update with a rule removed: %v, want ErrStructureChanged", err)
	}
	new = mustCompile(t, applyTestDesired(1, 1, 1))
	new.Sets = new.Sets[1:]
	if err := a.Update(old, new); !errors.Is(err, ErrStructureChanged) {
		t.Errorf("Update with a set removed: %v, want ErrStructureChanged", err)
	}
}

// TestStaleGenerationIsRefused: a batch planned against an older ruleset
// generation is refused with ERESTART, which Reconcile retries on.
func TestStaleGenerationIsRefused(t *testing.T) {
	ns := newTestNetNS(t)
	a := ns.applier(t)
	gen, err := a.conn.GetGen()
	if err != nil {
		t.Fatalf("GetGen: %v", err)
	}
	ns.nft(t, "add", "table", "ip", "someone_else")
	b := &batch{}
	b.add(func(c *nftables.Conn) error { c.AddTable(a.table); return nil })
	if err := a.send(b, gen.ID); !errors.Is(err, unix.ERESTART) {
		t.Errorf("send with a stale generation: %v, want ERESTART", err)
	}
	if ok, err := a.TableExists(); err != nil || ok {
		t.Errorf("TableExists after a refused batch = %v, %v", ok, err)
	}
}

// TestSizedSets: a table from before sets had sizes is upgraded to sized
// sets with its elements; a set that would overflow its size fails the
// whole batch with a message saying so, and nothing changes.
func TestSizedSets(t *testing.T) {
	ns := newTestNetNS(t)
	a := ns.applier(t)
	ns.nftFile(t, `table ip nftbridge {
	set published { type ipv4_addr . inet_proto . inet_service; elements = { 172.16.0.2 . tcp . 80 } }
}
`)
	rs := mustCompile(t, applyTestDesired(2, 2, 2))
	mustReconcile(t, a, rs)
	checkParity(t, ns, rs)
	if got := ns.nft(t, "list", "set", "ip", TableName, SetPublished); !strings.Contains(got, fmt.Sprintf("size %d", MaxPublishedPorts)) {
		t.Errorf("published after the upgrade has no size %d:\n%s", MaxPublishedPorts, got)
	}

	before := ns.nft(t, "list", "ruleset")
	small := mustCompile(t, applyTestDesired(2, 2, 2))
	for _, s := range small.Sets {
		if s.Name == SetEndpointHomes {
			s.Size = 3 // it has 4 elements
		}
	}
	err := a.Reconcile(small)
	if err == nil || !strings.Contains(err.Error(), "a set is full") || !strings.Contains(err.Error(), "rolled back") {
		t.Fatalf("Reconcile into a set too small = %v, want a rolled-back batch saying a set is full", err)
	}
	if after := ns.nft(t, "list", "ruleset"); after != before {
		t.Errorf("a failed Reconcile changed the ruleset:\n%s", lineDiff(before, after))
	}
}

// TestCompileRefusesMoreThanTheSetsHold: more endpoints or ports than the
// sized sets hold is an error naming the count, before any kernel work.
func TestCompileRefusesMoreThanTheSetsHold(t *testing.T) {
	d := Desired{Networks: []Network{applyTestNetwork(0, true, false, true)}}
	for i := range MaxEndpoints + 1 {
		d.Endpoints = append(d.Endpoints, Endpoint{Bridge: "br-0", Addr: netip.AddrFrom4([4]byte{172, 16, byte(i >> 8), byte(i)})})
	}
	if _, err := Compile(d); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("%d endpoints", MaxEndpoints+1)) {
		t.Errorf("Compile of %d endpoints = %v, want an error naming the count", MaxEndpoints+1, err)
	}
}
