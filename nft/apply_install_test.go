package nft

import (
	"strings"
	"testing"
)

// stagedApplier installs every new table in stages of batch elements, so
// that small rulesets take the path a 34,000-element restore takes.
func stagedApplier(t *testing.T, ns *testNetNS, batch int) *Applier {
	a := ns.applier(t)
	a.testInstallMin, a.testInstallBatch = 1, batch
	return a
}

// TestInstallStaged: a table installed in stages is exactly the table one
// batch makes (listing order included), and reconciling it again is the
// ordinary, atomic path.
func TestInstallStaged(t *testing.T) {
	ns := newTestNetNS(t)
	rs := mustCompile(t, applyTestDesired(4, 3, 5))
	if rs.ElementCount() < 20 {
		t.Fatalf("test ruleset has %d elements; want enough for several batches", rs.ElementCount())
	}
	a := stagedApplier(t, ns, 7)
	mustReconcile(t, a, rs)
	checkParity(t, ns, rs)

	ns.nft(t, "add", "rule", "ip", TableName, ChainUser, "iifname", `"x"`, "drop")
	more := mustCompile(t, applyTestDesired(5, 3, 6))
	mustReconcile(t, a, more)
	if got, want := ns.nft(t, "-t", "list", "table", "ip", TableName), withUserRule(more, `iifname "x" drop`); got != want {
		t.Errorf("the second Reconcile (table present) differs, or lost the user chain's rule:\n%s", lineDiff(want, got))
	}
	for _, s := range more.Sets {
		if got, want := kernelElementStrings(t, ns, s), modelElementStrings(s); strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("set %s after the second Reconcile:\n%s", s.Name, lineDiff(strings.Join(want, "\n"), strings.Join(got, "\n")))
		}
	}
}

// TestInstallStagedFailureRemovesTable: when a batch after the first
// fails, in the elements or in the base chains' rules, the half-installed
// table is deleted again, the error says so, and the rest of the ruleset
// is untouched.
func TestInstallStagedFailureRemovesTable(t *testing.T) {
	ns := newTestNetNS(t)
	ns.nftFile(t, "table inet other {\n\tchain c {\n\t\ttype filter hook input priority 0; policy accept;\n\t\tcounter\n\t}\n}\n")
	before := ns.nft(t, "list", "ruleset")
	a := stagedApplier(t, ns, 2)

	full := mustCompile(t, applyTestDesired(2, 2, 2))
	full.Set(SetEndpointHomes).Size = 3 // it has 4 elements: a later batch overflows it
	badJump := mustCompile(t, applyTestDesired(2, 2, 2))
	fwd := badJump.Chain(ChainForward)
	fwd.Rules = append(fwd.Rules, Rule{Comment: "BAD", Exprs: []Expr{Verdict{Kind: Jump, Chain: "missing"}}})

	for _, c := range []struct {
		name  string
		rs    *Ruleset
		stage string
	}{{"a set overflows", full, "elements"}, {"a base chain's rule jumps nowhere", badJump, "base chains"}} {
		err := a.Reconcile(c.rs)
		t.Logf("%s: %v", c.name, err)
		if err == nil || !strings.Contains(err.Error(), c.stage) || !strings.Contains(err.Error(), "removed again") {
			t.Errorf("%s: Reconcile = %v, want an error in the %s saying the table was removed again", c.name, err, c.stage)
		}
		if ok, err := a.TableExists(); err != nil || ok {
			t.Errorf("%s: our table exists after the failed install (%v)", c.name, err)
		}
		if after := ns.nft(t, "list", "ruleset"); after != before {
			t.Errorf("%s: the failed install changed the ruleset:\n%s", c.name, lineDiff(before, after))
		}
	}
}
