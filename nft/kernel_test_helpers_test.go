package nft

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// requirePrivileges skips a kernel test where it cannot run (not root, no
// nft binary), but fails it when CI is set: a test that silently skips in
// CI is a test that does not exist.
func requirePrivileges(t testing.TB) {
	t.Helper()
	var reason string
	if os.Geteuid() != 0 {
		reason = "needs root to create network namespaces and program nftables"
	} else if _, err := exec.LookPath("nft"); err != nil {
		reason = "needs the nft binary to read the kernel's ruleset back"
	} else if _, err := exec.LookPath("ip"); err != nil {
		reason = "needs the ip binary (iproute2) to create network namespaces"
	}
	if reason == "" {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("CI is set but this test cannot run: %s", reason)
	}
	t.Skip(reason)
}

// testNetNS is a throwaway network namespace, deleted when the test ends.
type testNetNS struct {
	name string
	fd   int
}

func newTestNetNS(t testing.TB) *testNetNS {
	t.Helper()
	requirePrivileges(t)
	name := fmt.Sprintf("nbtest-%08x", rand.Uint32())
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add %s: %v: %s", name, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v: %s", name, err, out)
		}
	})
	f, err := os.Open("/run/netns/" + name)
	if err != nil {
		t.Fatalf("open namespace %s: %v", name, err)
	}
	t.Cleanup(func() { f.Close() })
	return &testNetNS{name: name, fd: int(f.Fd())}
}

// applier opens an Applier on the namespace, closed when the test ends.
func (ns *testNetNS) applier(t testing.TB) *Applier {
	t.Helper()
	a, err := NewApplier(WithNetNSFd(ns.fd))
	if err != nil {
		t.Fatalf("NewApplier: %v", err)
	}
	t.Cleanup(func() { a.Close() })
	return a
}

// nft runs nft in the namespace and fails the test on error.
func (ns *testNetNS) nft(t testing.TB, args ...string) string {
	t.Helper()
	out, err := ns.tryNFT(args...)
	if err != nil {
		t.Fatalf("nft %s: %v", strings.Join(args, " "), err)
	}
	return out
}

func (ns *testNetNS) tryNFT(args ...string) (string, error) {
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns.name, "nft"}, args...)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out), fmt.Errorf("%w: %s", err, stderr.String())
	}
	return string(out), nil
}

// nftFile loads text with `nft -f` in the namespace.
func (ns *testNetNS) nftFile(t testing.TB, text string, extra ...string) string {
	t.Helper()
	path := t.TempDir() + "/ruleset.nft"
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return ns.nft(t, append(extra, "-f", path)...)
}

// checkParity compares the kernel's table with rs exactly: `nft -t list
// table` against RenderTerse, and every set's elements (`nft -j list`,
// turned back into nft's element text) against ElementString.
func checkParity(t testing.TB, ns *testNetNS, rs *Ruleset) {
	t.Helper()
	if got, want := ns.nft(t, "-t", "list", "table", "ip", TableName), RenderTerse(rs); got != want {
		t.Errorf("nft -t list table differs from RenderTerse:\n%s", lineDiff(want, got))
	}
	for _, s := range rs.Sets {
		got := kernelElementStrings(t, ns, s)
		want := modelElementStrings(s)
		if !slices.Equal(got, want) {
			t.Errorf("set %s: kernel has %d elements, model %d:\n%s", s.Name, len(got), len(want),
				lineDiff(strings.Join(want, "\n"), strings.Join(got, "\n")))
		}
	}
}

func modelElementStrings(s *Set) []string {
	out := make([]string, len(s.Elements))
	for i, e := range s.Elements {
		out[i] = ElementString(s, e)
	}
	slices.Sort(out)
	return out
}

// kernelElementStrings reads a set's elements with `nft -j` and prints
// them as ElementString does, sorted.
func kernelElementStrings(t testing.TB, ns *testNetNS, s *Set) []string {
	t.Helper()
	kind := "set"
	if s.IsMap() {
		kind = "map"
	}
	var doc struct {
		Nftables []map[string]struct {
			Elem []json.RawMessage `json:"elem"`
		} `json:"nftables"`
	}
	out := ns.nft(t, "-j", "list", kind, "ip", TableName, s.Name)
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("parse nft -j list %s %s: %v\n%s", kind, s.Name, err, out)
	}
	var elems []string
	for _, obj := range doc.Nftables {
		for _, raw := range obj[kind].Elem {
			str, err := jsonElementString(s, raw)
			if err != nil {
				t.Fatalf("set %s element %s: %v", s.Name, raw, err)
			}
			elems = append(elems, str)
		}
	}
	slices.Sort(elems)
	return elems
}

func jsonElementString(s *Set, raw json.RawMessage) (string, error) {
	var key, data any
	if s.IsMap() {
		var pair []any
		if err := json.Unmarshal(raw, &pair); err != nil || len(pair) != 2 {
			return "", fmt.Errorf("map element is not [key, data]")
		}
		key, data = pair[0], pair[1]
	} else if err := json.Unmarshal(raw, &key); err != nil {
		return "", err
	}
	out, err := jsonValuesString(s.Key, key)
	if err != nil || !s.IsMap() {
		return out, err
	}
	if s.IsVerdictMap() {
		v, ok := data.(map[string]any)
		if !ok || len(v) != 1 {
			return "", fmt.Errorf("verdict %v", data)
		}
		for kind, arg := range v {
			if target, ok := arg.(map[string]any); ok {
				return out + " : " + kind + " " + fmt.Sprint(target["target"]), nil
			}
			return out + " : " + kind, nil
		}
	}
	d, err := jsonValuesString(s.Data, data)
	return out + " : " + d, err
}

func jsonValuesString(types []Datatype, v any) (string, error) {
	if len(types) == 1 {
		return jsonValueString(types[0], v)
	}
	obj, ok := v.(map[string]any)
	fields, ok2 := obj["concat"].([]any)
	if !ok || !ok2 || len(fields) != len(types) {
		return "", fmt.Errorf("not a concatenation of %d fields: %v", len(types), v)
	}
	parts := make([]string, len(fields))
	for i, f := range fields {
		s, err := jsonValueString(types[i], f)
		if err != nil {
			return "", err
		}
		parts[i] = s
	}
	return strings.Join(parts, " . "), nil
}

func jsonValueString(t Datatype, v any) (string, error) {
	switch v := v.(type) {
	case string:
		if t == TypeIfname {
			return strconv.Quote(v), nil
		}
		return v, nil
	case float64:
		return strconv.Itoa(int(v)), nil
	case map[string]any:
		if p, ok := v["prefix"].(map[string]any); ok {
			prefix, err := netip.ParsePrefix(fmt.Sprintf("%v/%v", p["addr"], p["len"]))
			if err != nil {
				return "", err
			}
			return valueString(t, PrefixValue(prefix)), nil
		}
		if r, ok := v["range"].([]any); ok && len(r) == 2 {
			return fmt.Sprintf("%v-%v", r[0], r[1]), nil
		}
	}
	return "", fmt.Errorf("unexpected %s value %v", t.Name(), v)
}

// lineDiff shows the lines of want and got that differ, in order.
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	for i := range max(len(w), len(g)) {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			fmt.Fprintf(&b, "line %d:\n  want %q\n  got  %q\n", i+1, wl, gl)
		}
	}
	return b.String()
}

// mustCompile compiles d or fails the test.
func mustCompile(t testing.TB, d Desired) *Ruleset {
	t.Helper()
	rs, err := Compile(d)
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	return rs
}

// ruleLines counts the rule lines of an `nft list` output (lines ending
// in a rule comment: every rule of ours has one).
func ruleLines(listing string) int {
	n := 0
	for _, l := range strings.Split(listing, "\n") {
		if strings.Contains(l, ` comment "`) {
			n++
		}
	}
	return n
}
