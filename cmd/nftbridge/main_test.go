package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// run runs the CLI in-process with a state dir of its own.
func run(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	a := &app{stdout: &out, stderr: &errOut, ctx: context.Background()}
	code = a.main(append([]string{"--state-dir", t.TempDir()}, args...))
	return code, out.String(), errOut.String()
}

// TestUsage: mistakes in the command line exit 2 with a message naming the
// bad value, before anything opens the store or the kernel; --help exits 0.
func TestUsage(t *testing.T) {
	cases := []struct {
		args []string
		code int
		want string // in stderr (or stdout for help)
	}{
		{[]string{"--help"}, 0, "Commands:"},
		{[]string{"network", "create", "--help"}, 0, "--subnet"},
		{[]string{"port", "publish", "--help"}, 0, "[hostip:][hostport:]containerport"},
		{[]string{}, 2, "a command is required"},
		{[]string{"bogus"}, 2, `unknown command "bogus"`},
		{[]string{"network", "frobnicate"}, 2, `unknown command "frobnicate"`},
		{[]string{"network", "create"}, 2, "wrong number of arguments"},
		{[]string{"network", "create", "a", "b"}, 2, "wrong number of arguments"},
		{[]string{"network", "create", "--subnet", "10.0.0.0/33", "x"}, 2, `invalid CIDR "10.0.0.0/33"`},
		{[]string{"network", "create", "--gateway", "nope", "x"}, 2, `invalid IP address "nope"`},
		{[]string{"network", "create", "--icc=maybe", "x"}, 2, "maybe"},
		{[]string{"network", "ls", "--format", "xml"}, 2, `invalid --format "xml"`},
		{[]string{"endpoint", "add", "ns1"}, 2, "--network is required"},
		{[]string{"port", "publish", "ep"}, 2, "at least one -p SPEC is required"},
		{[]string{"port", "publish", "ep", "-p", "80:99999"}, 2, `"80:99999"`},
		{[]string{"port", "publish", "ep", "-p", "80/sctp"}, 2, "sctp"},
		{[]string{"--state-dir"}, 2, "--state-dir needs a directory"},
	}
	for _, tc := range cases {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			code, stdout, stderr := run(t, tc.args...)
			if code != tc.code {
				t.Errorf("exit status %d, want %d (stderr %q)", code, tc.code, stderr)
			}
			if !strings.Contains(stdout+stderr, tc.want) {
				t.Errorf("output lacks %q:\nstdout: %s\nstderr: %s", tc.want, stdout, stderr)
			}
		})
	}
}

// TestInterspersedFlags: like Docker, flags may follow the arguments.
func TestInterspersedFlags(t *testing.T) {
	f := newFlags("t", "", "", &app{stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{}})
	subnet := f.String("subnet", "", "")
	internal := f.Bool("internal", false, "")
	pos, err := f.parse([]string{"net1", "--subnet", "10.1.0.0/16", "--internal"}, 1, 1)
	if err != nil {
		t.Fatal(err)
	}
	if pos[0] != "net1" || *subnet != "10.1.0.0/16" || !*internal {
		t.Errorf("got %v %q %v", pos, *subnet, *internal)
	}
}

func TestVersion(t *testing.T) {
	code, stdout, _ := run(t, "version")
	if code != 0 || !strings.HasPrefix(stdout, "nftbridge ") {
		t.Errorf("version: %d %q", code, stdout)
	}
}
