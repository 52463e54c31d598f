package e2e

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/nftbridge/nftbridge/e2e/echo"
)

// The outside link. The host namespace's end is "uplink"; the outside
// namespace routes everything through the host, the container subnets too.
const (
	hostAddr     = "10.201.0.1"
	outsideAddr  = "10.201.0.2"
	uplinkPrefix = "/24"

	containerNets = "172.16.0.0/12" // every test network is inside it

	outsideTCP = 7000 // echo ports of the outside namespace's server
	outsideUDP = 7001
)

// world is one throwaway test environment:
//
//	outside (10.201.0.2) ── uplink ── host (10.201.0.1, nftbridge, its table,
//	                                  bridges) ── veths ── container namespaces
//
// nftbridge runs inside the host namespace (`ip netns exec`), so its bridges,
// table and sysctls never touch the machine's own namespace.
type world struct {
	t        *testing.T
	id       string
	bin      string
	host     string
	outside  string
	stateDir string

	mu         sync.Mutex
	namespaces []string                  // every namespace made, in creation order
	servers    map[string][]*echo.Server // by namespace
}

// newWorld builds the host and outside namespaces with the uplink between
// them and an echo server outside. Everything is removed when t ends; on
// failure the state of every namespace is logged first.
func newWorld(t *testing.T) *world {
	t.Helper()
	requirePrivileges(t)
	return newNetWorld(t, nftbridgeBin(t))
}

// newNetWorld is newWorld without looking for the CLI (the harness's own
// test uses it).
func newNetWorld(t *testing.T, bin string) *world {
	t.Helper()
	requirePrivileges(t)
	w := &world{t: t, id: randomID(), bin: bin, stateDir: t.TempDir(), servers: map[string][]*echo.Server{}}
	t.Cleanup(w.cleanup)
	w.host = w.addNS("host")
	w.outside = w.addNS("out")
	w.must(ipIn(w.host, "link", "add", "uplink", "type", "veth", "peer", "name", "eth0", "netns", w.outside))
	w.must(ipIn(w.host, "addr", "add", hostAddr+uplinkPrefix, "dev", "uplink"))
	w.must(ipIn(w.host, "link", "set", "uplink", "up"))
	w.must(ipIn(w.outside, "addr", "add", outsideAddr+uplinkPrefix, "dev", "eth0"))
	w.must(ipIn(w.outside, "link", "set", "eth0", "up"))
	w.must(ipIn(w.outside, "route", "add", "default", "via", hostAddr))
	// Redundant with the default route, but says in a dump what the
	// direct-access and no-masquerade cases rely on.
	w.must(ipIn(w.outside, "route", "add", containerNets, "via", hostAddr))
	w.serve(w.outside, []uint16{outsideTCP}, []uint16{outsideUDP})
	return w
}

func randomID() string {
	var b [3]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// addNS creates namespace nbe2e-<id>-<role> with its loopback up.
func (w *world) addNS(role string) string {
	w.t.Helper()
	name := fmt.Sprintf("nbe2e-%s-%s", w.id, role)
	w.must(run("ip", "netns", "add", name))
	w.mu.Lock()
	w.namespaces = append(w.namespaces, name)
	w.mu.Unlock()
	w.must(ipIn(name, "link", "set", "lo", "up"))
	return name
}

// container creates an empty namespace to attach with `endpoint add`.
func (w *world) container(role string) string {
	w.t.Helper()
	return w.addNS(role)
}

func (w *world) cleanup() {
	if w.t.Failed() {
		w.dump()
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, ns := range slices.Backward(w.namespaces) {
		for _, s := range w.servers[ns] {
			s.Close()
		}
		if r := run("ip", "netns", "del", ns); r.code != 0 {
			w.t.Errorf("cleanup: %v", r)
		}
	}
}

// dump logs what an operator would look at first: our table and every
// namespace's addresses and routes (CNI's portmap_integ_test pattern).
func (w *world) dump() {
	w.t.Logf("=== state of world %s ===", w.id)
	ruleset := nsExec(w.host, "nft", "list", "ruleset")
	w.t.Logf("--- host: nft list ruleset\n%s%s", ruleset.stdout, ruleset.stderr)
	if w.bin != "" {
		w.t.Logf("--- host: nftbridge endpoint ls\n%s", w.nb("endpoint", "ls").stdout)
	}
	w.mu.Lock()
	namespaces := slices.Clone(w.namespaces)
	w.mu.Unlock()
	for _, ns := range namespaces {
		addr, route := ipIn(ns, "addr"), ipIn(ns, "route")
		w.t.Logf("--- %s: ip addr\n%s%s--- %s: ip route\n%s%s", ns, addr.stdout, addr.stderr, ns, route.stdout, route.stderr)
	}
}

// must fails the test unless the command succeeded.
func (w *world) must(r cmdResult) cmdResult {
	w.t.Helper()
	if r.code != 0 {
		w.t.Fatalf("%v", r)
	}
	return r
}

// nb runs the CLI in the host namespace against this world's state.
func (w *world) nb(args ...string) cmdResult {
	return nsExec(w.host, append([]string{w.bin, "--state-dir", w.stateDir}, args...)...)
}

// mustNB runs the CLI and fails the test unless it succeeded; it returns
// stdout without the trailing newline.
func (w *world) mustNB(args ...string) string {
	w.t.Helper()
	return strings.TrimSpace(w.must(w.nb(args...)).stdout)
}

// statePath is the CLI's state file.
func (w *world) statePath() string { return filepath.Join(w.stateDir, "state.db") }

// nft runs nft in the host namespace and fails the test on error.
func (w *world) nft(args ...string) string {
	w.t.Helper()
	return w.must(nsExec(w.host, append([]string{"nft"}, args...)...)).stdout
}

// serve starts an echo server whose sockets live in namespace ns.
func (w *world) serve(ns string, tcpPorts, udpPorts []uint16) {
	w.t.Helper()
	var srv *echo.Server
	err := inNS(ns, func() (err error) {
		srv, err = echo.Listen(tcpPorts, udpPorts)
		return err
	})
	if err != nil {
		w.t.Fatalf("echo server in %s: %v", ns, err)
	}
	w.mu.Lock()
	w.servers[ns] = append(w.servers[ns], srv)
	w.mu.Unlock()
}

// network creates a network and returns its bridge name, which is
// nb<id><suffix> so it is short and easy to spot in a dump.
func (w *world) network(name, subnet string, extra ...string) string {
	w.t.Helper()
	bridge := "nb" + w.id + name
	args := append([]string{"network", "create", "--subnet", subnet, "--bridge", bridge}, extra...)
	w.mustNB(append(args, name)...)
	return bridge
}

// endpoint attaches a new container namespace to a network and returns the
// namespace and the address the CLI gave it. The endpoint is named role.
func (w *world) endpoint(network, role string, extra ...string) (ns, addr string) {
	w.t.Helper()
	ns = w.container(role)
	args := append([]string{"endpoint", "add", "--network", network, "--name", role}, extra...)
	addr = w.mustNB(append(args, ns)...)
	return ns, addr
}
