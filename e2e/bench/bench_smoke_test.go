package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestMain lets the test binary play the benchmark's roles when the
// benchmark re-executes it inside a namespace.
func TestMain(m *testing.M) {
	MaybeRunRole()
	os.Exit(m.Run())
}

// requireRoot skips without privileges or tools, but fails in CI: a smoke
// test that silently skips there does not exist.
func requireRoot(t *testing.T) {
	t.Helper()
	why := ""
	if os.Geteuid() != 0 {
		why = "needs root"
	}
	for _, tool := range []string{"ip", "nft", "iptables-legacy-restore", "iptables-nft-restore", "go"} {
		if _, err := exec.LookPath(tool); err != nil && why == "" {
			why = tool + " not installed"
		}
	}
	if why == "" {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("benchmark smoke test cannot run in CI: %s", why)
	}
	t.Skip(why)
}

type testLog struct{ t *testing.T }

func (w testLog) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// smokeConfig is the whole benchmark at toy size: every layout, metric and
// control-plane measurement once, in a few seconds.
func smokeConfig(t *testing.T) Config {
	cfg := DefaultConfig()
	cfg.OutDir = t.TempDir()
	cfg.Networks, cfg.Ports, cfg.Runs = []int{2}, []int{3}, 1
	cfg.Duration, cfg.Warmup, cfg.TCPConc, cfg.UDPConc = 150*time.Millisecond, 50*time.Millisecond, 4, 1
	cfg.PublishN, cfg.PublishPorts = 3, []int{2, 4}
	cfg.NetworkNs, cfg.NetCreateP = []int{3}, 2
	cfg.RestoreN, cfg.RestoreP, cfg.RestoreReps, cfg.ColdRestores = 3, 4, 2, 1
	cfg.CLIReps, cfg.LibReps, cfg.Rounds = 1, 2, 2
	cfg.Log = testLog{t}
	cfg.Command = "go test ./e2e/bench -run TestSmoke"
	return cfg
}

// TestSmoke runs the benchmark end to end at toy size, so that it cannot
// rot between full runs: every layout loads and carries traffic, every
// control-plane operation is timed, and the report and charts are written.
func TestSmoke(t *testing.T) {
	requireRoot(t)
	cfg := smokeConfig(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	res, err := Run(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, note := range res.Notes {
		t.Errorf("problem recorded: %s", note)
	}
	for _, layout := range append(Layouts(), LayoutNftbridgeN1P1, LayoutFloor) {
		for _, metric := range Metrics() {
			if s := res.Find(2, 3, layout, metric); s == nil || len(s.Samples) != 1 || s.Samples[0] <= 0 {
				t.Errorf("%s %s: no positive measurement: %+v", layout, metric, s)
			}
		}
	}
	for _, metric := range RoundMetrics {
		// One pair from the regular run, then one per round.
		for _, other := range []string{LayoutNone, LayoutNftbridgeN1P1, LayoutLegacy, LayoutFloor} {
			if ratios := res.pairedRatios(2, 3, metric, LayoutNftbridge, other); len(ratios) != 1+cfg.Rounds {
				t.Errorf("nftbridge / %s, %s: %d paired ratios, want %d", other, metric, len(ratios), 1+cfg.Rounds)
			}
		}
	}
	checkControl(t, res, cfg)
	if len(res.Memory) != 2 {
		t.Errorf("memory: want the daemon and the library holder, got %+v", res.Memory)
	}
	report, err := os.ReadFile(filepath.Join(cfg.OutDir, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"## Targets", "## Data plane", "## Control plane", "PASS",
		"holding N=1, P=1 on the same topology", "iptables-legacy, side by side", "### Diagnostics",
		"nat-floor / none", "median of 3 paired ratios", "### Side by side at N=2, P=3"} {
		if !strings.Contains(string(report), want) {
			t.Errorf("report lacks %q", want)
		}
	}
	for _, f := range []string{"results.json", ChartConn, ChartDataPlane, ChartPublish} {
		if st, err := os.Stat(filepath.Join(cfg.OutDir, f)); err != nil || st.Size() == 0 {
			t.Errorf("%s not written: %v", f, err)
		}
	}
	assertNoNamespacesLeft(t)
}

func checkControl(t *testing.T, res *Results, cfg Config) {
	t.Helper()
	want := []struct {
		kind    string
		x       int
		methods []string
	}{
		{KindPublish, 2, []string{MethodCLI, MethodLib, MethodLegacyPub, MethodNftPub}},
		{KindPublish, 4, []string{MethodCLI, MethodLib, MethodLegacyPub, MethodNftPub}},
		{KindNetwork, 3, []string{MethodCLI, MethodLib}},
		{KindRestore, cfg.RestoreP, []string{MethodRestore, MethodColdRest, MethodBridgesIP, MethodNftF, MethodLegacyRest, MethodNftRest}},
	}
	for _, w := range want {
		for _, m := range w.methods {
			if s := res.FindControl(w.kind, w.x, m); s == nil || len(s.SamplesMS) == 0 || s.SamplesMS[0] <= 0 {
				t.Errorf("%s at %d by %s: not measured", w.kind, w.x, m)
			}
		}
	}
}

// assertNoNamespacesLeft checks that Run deleted everything it created.
func assertNoNamespacesLeft(t *testing.T) {
	t.Helper()
	entries, _ := os.ReadDir("/run/netns")
	prefix := fmt.Sprintf("nbb%d-", os.Getpid())
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), prefix) {
			t.Errorf("namespace %s left behind", e.Name())
		}
	}
}
