package e2e

import (
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/nftbridge/nftbridge/e2e/echo"
)

// TestTeardown: removing every endpoint and network leaves the table as
// clean as nftbridge's own rendering of an empty state (and the cleaned
// golden), no bridge or veth behind, and nothing reachable.
func TestTeardown(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.network("t1", "172.21.0.0/24")
	w.network("t2", "172.22.0.0/24", "--icc=false", "--masquerade=false", "--host-ip", hostAddr)
	w.network("t3", "172.23.0.0/24", "--internal")
	var containers []string
	for _, ep := range [][2]string{{"t1", "e1"}, {"t1", "e2"}, {"t2", "e3"}, {"t3", "e4"}} {
		ns, _ := w.endpoint(ep[0], ep[1])
		containers = append(containers, ns)
	}
	w.mustNB("port", "publish", "e1", "-p", "8080:80", "-p", "127.0.0.1:9090:90", "-p", "5353:53/udp")
	w.mustNB("port", "publish", "e3", "-p", "8081:80", "-p", "81")
	w.serve(containers[0], []uint16{80}, nil)
	w.expectPeer(t, w.outside, "tcp", hostPort(hostAddr, 8080), outsideAddr)

	w.mustNB("endpoint", "rm", "e1")
	w.mustNB("endpoint", "rm", "e2")
	w.mustNB("network", "rm", "t1")
	w.mustNB("network", "rm", "--force", "t2") // takes e3 with it
	w.mustNB("endpoint", "rm", "e4")
	w.mustNB("network", "rm", "t3")

	cleaned := w.mustNB("ruleset")
	table := strings.TrimSpace(w.nft("list", "table", "ip", "nftbridge"))
	if table != cleaned {
		t.Errorf("table after teardown differs from `nftbridge ruleset` of the empty state:\n%s", lineDiff(cleaned, table))
	}
	if golden, err := os.ReadFile("../nft/testdata/cleaned.golden"); err == nil { // absent in the VM
		if want := strings.TrimSpace(string(golden)); table != want {
			t.Errorf("table after teardown differs from nft/testdata/cleaned.golden:\n%s", lineDiff(want, table))
		}
	}
	counts := w.elementCounts()
	if len(counts) == 0 {
		t.Errorf("no sets or maps in the table after teardown")
	}
	for name, n := range counts {
		if n != 0 {
			t.Errorf("set or map %s has %d elements after teardown", name, n)
		}
	}
	if links := linkNames(t, w.host); !slices.Equal(links, []string{"lo", "uplink"}) {
		t.Errorf("host links after teardown: %v, want only lo and uplink", links)
	}
	for _, ns := range containers {
		if links := linkNames(t, ns); !slices.Equal(links, []string{"lo"}) {
			t.Errorf("%s links after teardown: %v, want only lo", ns, links)
		}
	}
	for _, list := range [][]string{{"network", "ls"}, {"endpoint", "ls"}, {"port", "ls"}} {
		if out := w.mustNB(append(list, "--format", "json")...); out != "[]" {
			t.Errorf("%s after teardown: %s, want []", strings.Join(list, " "), out)
		}
	}
	w.expectBlocked(t, w.outside, "tcp", hostPort(hostAddr, 8080), echo.Refused)
}

// linkNames lists a namespace's interfaces, sorted, without "@peer" suffixes.
func linkNames(t *testing.T, ns string) []string {
	t.Helper()
	res := ipIn(ns, "-o", "link", "show")
	if res.code != 0 {
		t.Fatalf("%v", res)
	}
	var names []string
	for _, line := range strings.Split(strings.TrimSpace(res.stdout), "\n") {
		fields := strings.Fields(line)
		if len(fields) < 2 {
			continue
		}
		name, _, _ := strings.Cut(strings.TrimSuffix(fields[1], ":"), "@")
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}
