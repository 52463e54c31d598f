// Package e2e runs nftbridge end to end: real bridges, veths and nftables in
// throwaway network namespaces, with real packets from an "outside"
// namespace. Every test builds its own world (host, outside and container
// namespaces) and removes it, so the machine's own network is never touched.
//
// The suite also runs inside the nft-only VM (e2e/vm): there it gets the CLI
// from NFTBRIDGE_BIN and needs nothing but ip and nft on PATH.
package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// build holds the nftbridge binary built for this run when NFTBRIDGE_BIN is
// not set: built once, on first use, removed by TestMain.
var build struct {
	once sync.Once
	dir  string
	path string
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if build.dir != "" {
		os.RemoveAll(build.dir)
	}
	os.Exit(code)
}

// nftbridgeBin returns the CLI under test: $NFTBRIDGE_BIN, or a binary built
// from this repository once per run.
func nftbridgeBin(t testing.TB) string {
	t.Helper()
	if bin := os.Getenv("NFTBRIDGE_BIN"); bin != "" {
		if _, err := os.Stat(bin); err != nil {
			t.Fatalf("NFTBRIDGE_BIN: %v", err)
		}
		return bin
	}
	build.once.Do(func() {
		build.dir, build.err = os.MkdirTemp("", "nbe2e-bin-")
		if build.err != nil {
			return
		}
		build.path = filepath.Join(build.dir, "nftbridge")
		cmd := exec.Command(goTool(), "build", "-o", build.path, "./cmd/nftbridge")
		cmd.Dir = ".." // the repository root: tests run in the package directory
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			build.err = fmt.Errorf("go build ./cmd/nftbridge: %v\n%s", err, out)
		}
	})
	if build.err != nil {
		t.Fatalf("no nftbridge binary (set NFTBRIDGE_BIN or fix the build): %v", build.err)
	}
	return build.path
}

func goTool() string {
	if path, err := exec.LookPath("go"); err == nil {
		return path
	}
	return filepath.Join(runtime.GOROOT(), "bin", "go")
}

// inCI reports whether a test that cannot run must fail rather than skip: a
// test that silently skips in CI is a test that does not exist.
func inCI() bool { return os.Getenv("CI") != "" }

// skipOrFail skips the test with reason, or fails it when CI is set.
func skipOrFail(t testing.TB, reason string) {
	t.Helper()
	if inCI() {
		t.Fatalf("cannot run in CI: %s", reason)
	}
	t.Skip(reason)
}

// requirePrivileges stops a test that needs root, ip and nft.
func requirePrivileges(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		skipOrFail(t, "needs root to create network namespaces")
	}
	var missing []string
	for _, tool := range []string{"ip", "nft"} {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, tool)
		}
	}
	if len(missing) > 0 {
		skipOrFail(t, "needs "+strings.Join(missing, " and ")+" on PATH")
	}
}
