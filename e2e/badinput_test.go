package e2e

import (
	"bytes"
	"os"
	"slices"
	"strings"
	"testing"
)

// snapshot is everything a failed command must leave exactly as it was.
type snapshot struct {
	ruleset string
	state   []byte
	links   string
}

func (w *world) snapshot() snapshot {
	w.t.Helper()
	state, err := os.ReadFile(w.statePath())
	if err != nil {
		w.t.Fatalf("read state file: %v", err)
	}
	return snapshot{ruleset: w.nft("list", "ruleset"), state: state, links: linkSummary(w.t, w.host)}
}

// linkSummary is a namespace's interfaces with their masters, and its IPv4
// addresses: what a failed command could leave behind. Link states are left
// out, as the kernel updates them asynchronously for a second or so.
func linkSummary(t *testing.T, ns string) string {
	t.Helper()
	var lines []string
	links := ipIn(ns, "-o", "link", "show")
	addrs := ipIn(ns, "-4", "-o", "addr", "show")
	if links.code != 0 || addrs.code != 0 {
		t.Fatalf("%v\n%v", links, addrs)
	}
	for _, line := range strings.Split(strings.TrimSpace(links.stdout), "\n") {
		fields := strings.Fields(line)
		if len(fields) < 2 {
			continue
		}
		summary := fields[1]
		if i := slices.Index(fields, "master"); i > 0 && i+1 < len(fields) {
			summary += " master " + fields[i+1]
		}
		lines = append(lines, summary)
	}
	for _, line := range strings.Split(strings.TrimSpace(addrs.stdout), "\n") {
		if fields := strings.Fields(line); len(fields) >= 4 {
			lines = append(lines, fields[1]+" "+fields[3])
		}
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}

func (s snapshot) diff(t *testing.T, after snapshot) {
	t.Helper()
	if after.ruleset != s.ruleset {
		t.Errorf("nft list ruleset changed:\n%s", lineDiff(s.ruleset, after.ruleset))
	}
	if !bytes.Equal(after.state, s.state) {
		t.Errorf("state file changed (%d bytes before, %d after)", len(s.state), len(after.state))
	}
	if after.links != s.links {
		t.Errorf("host links changed:\n%s", lineDiff(s.links, after.links))
	}
}

// TestBadInput: every user mistake exits non-zero with an error naming the
// bad value, and leaves the kernel (ruleset, links) and the state file
// byte-for-byte as they were.
func TestBadInput(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.network("n1", "172.21.0.0/16")
	w.network("ni", "172.26.0.0/24", "--internal")
	w.endpoint("n1", "web")
	w.endpoint("n1", "web2")
	w.endpoint("ni", "int1")
	w.mustNB("port", "publish", "web", "-p", "8080:80")
	spare := w.container("spare") // an existing namespace nobody uses
	missing := "nbe2e-" + w.id + "-missing"

	for _, tc := range []struct {
		name string
		args []string
		want []string // each must appear on stderr
	}{
		{"invalid CIDR", []string{"network", "create", "--subnet", "172.40.0.0/33", "bad"}, []string{"172.40.0.0/33"}},
		{"CIDR not an address", []string{"network", "create", "--subnet", "172.40.0.0.0/16", "bad"}, []string{"172.40.0.0.0/16"}},
		{"subnet with host bits", []string{"network", "create", "--subnet", "172.40.0.1/16", "bad"}, []string{"172.40.0.1/16"}},
		{"overlapping subnet", []string{"network", "create", "--subnet", "172.21.128.0/17", "bad"}, []string{"172.21.128.0/17", "172.21.0.0/16"}},
		{"gateway outside subnet", []string{"network", "create", "--subnet", "172.40.0.0/24", "--gateway", "172.41.0.1", "bad"}, []string{"172.41.0.1"}},
		{"duplicate network name", []string{"network", "create", "--subnet", "172.40.0.0/16", "n1"}, []string{`"n1"`}},
		{"bridge name too long", []string{"network", "create", "--subnet", "172.40.0.0/16", "--bridge", "nbe2e-sixteen-ch", "bad"}, []string{"nbe2e-sixteen-ch"}},
		{"invalid network name", []string{"network", "create", "--subnet", "172.40.0.0/16", "bad name"}, []string{`"bad name"`}},
		{"host port out of range", []string{"port", "publish", "web", "-p", "70000:80"}, []string{"70000"}},
		{"container port out of range", []string{"port", "publish", "web", "-p", "8081:65536"}, []string{"65536"}},
		{"malformed spec", []string{"port", "publish", "web", "-p", "80:80:80:80"}, []string{"80:80:80:80"}},
		{"unknown protocol", []string{"port", "publish", "web", "-p", "8081:80/sctp"}, []string{"sctp"}},
		{"one bad spec among good ones", []string{"port", "publish", "web", "-p", "8081:80", "-p", "8082:0"}, []string{"8082:0"}},
		{"host port taken", []string{"port", "publish", "web2", "-p", "8080:81"}, []string{"8080", `"web"`}},
		{"unknown network", []string{"endpoint", "add", "--network", "nosuch", "--name", "x", spare}, []string{`"nosuch"`}},
		{"unknown endpoint", []string{"port", "publish", "ghost", "-p", "80"}, []string{`"ghost"`}},
		{"missing namespace", []string{"endpoint", "add", "--network", "n1", "--name", "x", missing}, []string{missing}},
		{"duplicate endpoint name", []string{"endpoint", "add", "--network", "n1", "--name", "web", spare}, []string{`"web"`}},
		{"address outside subnet", []string{"endpoint", "add", "--network", "n1", "--name", "x", "--ip", "10.9.9.9", spare}, []string{"10.9.9.9"}},
		{"publish on internal network", []string{"port", "publish", "int1", "-p", "9999:80"}, []string{`"ni"`, "internal"}},
		{"unpublish what is not published", []string{"port", "unpublish", "web", "-p", "9999:80"}, []string{"9999"}},
		{"remove unknown endpoint", []string{"endpoint", "rm", "ghost"}, []string{`"ghost"`}},
		{"remove unknown network", []string{"network", "rm", "nosuch"}, []string{`"nosuch"`}},
		{"remove network in use", []string{"network", "rm", "n1"}, []string{`"n1"`, "web"}},
		{"bridge name taken by another link", []string{"network", "create", "--subnet", "172.40.0.0/16", "--bridge", "uplink", "bad"}, []string{`"uplink"`}},
		// Fails in the kernel, after the veth exists: the undo must remove it.
		{"namespace already has eth0", []string{"endpoint", "add", "--network", "n1", "--name", "x", w.outside}, []string{"eth0"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := w.snapshot()
			res := w.nb(tc.args...)
			t.Logf("exit %d: %s", res.code, strings.TrimSpace(res.stderr))
			if res.code == 0 {
				t.Errorf("succeeded, want an error: %v", res)
			}
			for _, want := range tc.want {
				if !strings.Contains(res.stderr, want) {
					t.Errorf("stderr does not name %s: %v", want, res)
				}
			}
			if strings.Contains(res.stderr, "panic") || strings.Contains(res.stderr, "goroutine ") {
				t.Errorf("crashed: %v", res)
			}
			before.diff(t, w.snapshot())
		})
	}
}
