package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func goTool() string {
	if path, err := exec.LookPath("go"); err == nil {
		return path
	}
	return filepath.Join(runtime.GOROOT(), "bin", "go")
}

// The CLI build (-tags nodaemon) must not link the plugin server: HTTP and
// TLS initialisation was a quarter of a CLI call's start-up.
func TestCLIBuildLeavesOutTheDaemon(t *testing.T) {
	out, err := exec.Command(goTool(), "list", "-tags", "nodaemon", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, pkg := range strings.Fields(string(out)) {
		switch pkg {
		case "net/http", "crypto/tls", "github.com/nftbridge/nftbridge/driver":
			t.Errorf("the CLI build links %s", pkg)
		}
	}
}

// `nftbridge daemon` in the CLI build runs nftbridged from its own
// directory with the whole command line, and says so when it is missing.
func TestCLIBuildExecsNftbridged(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "nftbridge")
	build := exec.Command(goTool(), "build", "-tags", "nodaemon", "-o", bin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build -tags nodaemon: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "--state-dir", dir, "daemon", "--socket", "/nonexistent/x.sock").CombinedOutput()
	if err == nil || !strings.Contains(string(out), filepath.Join(dir, "nftbridged")) {
		t.Errorf("daemon without nftbridged: err %v, output %q; want an error naming %s/nftbridged", err, out, dir)
	}
	script := "#!/bin/sh\necho \"$0 $*\"\n"
	if err := os.WriteFile(filepath.Join(dir, "nftbridged"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	out, err = exec.Command(bin, "--state-dir", dir, "daemon", "--socket", "/nonexistent/x.sock").CombinedOutput()
	want := filepath.Join(dir, "nftbridged") + " --state-dir " + dir + " daemon --socket /nonexistent/x.sock"
	if err != nil || strings.TrimSpace(string(out)) != want {
		t.Errorf("daemon = %q, %v; want %q", out, err, want)
	}
}
