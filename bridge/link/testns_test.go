package link

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// requirePrivileges skips a test that needs root and iproute2, unless CI is
// set: then it fails, because a test that skips in CI does not exist.
func requirePrivileges(t *testing.T) {
	t.Helper()
	reason := ""
	if os.Geteuid() != 0 {
		reason = "needs root to create network namespaces"
	} else if _, err := exec.LookPath("ip"); err != nil {
		reason = "needs iproute2's ip command"
	}
	if reason == "" {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("CI is set but the test cannot run: %s", reason)
	}
	t.Skip(reason)
}

// testNS is a named network namespace created for one test and deleted
// when it ends, with a netlink handle inside it for checks.
type testNS struct {
	name string
	ns   netns.NsHandle
	h    *netlink.Handle
}

func newTestNS(t *testing.T) *testNS {
	t.Helper()
	requirePrivileges(t)
	suffix := make([]byte, 4)
	rand.Read(suffix)
	name := "nbtest-" + hex.EncodeToString(suffix)
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("ip netns add %s: %v: %s", name, err, out)
		}
		t.Skipf("cannot create a network namespace: ip netns add: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v: %s", name, err, out)
		}
	})
	ns, err := netns.GetFromName(name)
	if err != nil {
		t.Fatalf("open namespace %s: %v", name, err)
	}
	t.Cleanup(func() { ns.Close() })
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatalf("netlink handle in %s: %v", name, err)
	}
	t.Cleanup(h.Close)
	return &testNS{name: name, ns: ns, h: h}
}

// link returns the named link in the namespace, or nil.
func (n *testNS) link(t *testing.T, name string) netlink.Link {
	t.Helper()
	l, err := linkByName(n.h, name)
	if err != nil {
		t.Fatalf("look up %s in %s: %v", name, n.name, err)
	}
	return l
}

// linkNames lists every interface in the namespace.
func (n *testNS) linkNames(t *testing.T) []string {
	t.Helper()
	links, err := retryDump(n.h.LinkList)
	if err != nil {
		t.Fatalf("list links in %s: %v", n.name, err)
	}
	var names []string
	for _, l := range links {
		names = append(names, l.Attrs().Name)
	}
	return names
}

// addrs lists the IPv4 addresses of an interface as strings.
func (n *testNS) addrs(t *testing.T, l netlink.Link) []string {
	t.Helper()
	list, err := retryDump(func() ([]netlink.Addr, error) { return n.h.AddrList(l, netlink.FAMILY_V4) })
	if err != nil {
		t.Fatalf("list addresses of %s: %v", l.Attrs().Name, err)
	}
	var out []string
	for _, a := range list {
		out = append(out, prefixOf(a.IPNet).String())
	}
	return out
}

// dump logs `ip addr` and `ip route` of the namespace, for failures.
func (n *testNS) dump(t *testing.T) {
	t.Helper()
	for _, args := range [][]string{{"addr"}, {"route"}} {
		out, _ := exec.Command("ip", append([]string{"-n", n.name}, args...)...).CombinedOutput()
		t.Logf("ip -n %s %s:\n%s", n.name, args[0], out)
	}
}

// checkIPv6Off fails unless the interface has IPv6 disabled and no IPv6
// address, not even a link-local one. A kernel without IPv6 passes.
func (n *testNS) checkIPv6Off(t *testing.T, name string) {
	t.Helper()
	l := n.link(t, name)
	if l == nil {
		t.Fatalf("%s does not exist in %s", name, n.name)
	}
	list, err := retryDump(func() ([]netlink.Addr, error) { return n.h.AddrList(l, netlink.FAMILY_V6) })
	if err != nil {
		t.Fatalf("list IPv6 addresses of %s: %v", name, err)
	}
	for _, a := range list {
		t.Errorf("%s in %s has IPv6 address %s; want IPv6 off", name, n.name, a.IPNet)
	}
	v, err := NewIn(n.ns).GetSysctl("net/ipv6/conf/" + name + "/disable_ipv6")
	if errors.Is(err, fs.ErrNotExist) {
		if _, statErr := os.Stat(ipv6ConfDir); errors.Is(statErr, fs.ErrNotExist) {
			return // no IPv6 in this kernel
		}
	}
	if err != nil || v != "1" {
		t.Errorf("%s in %s: disable_ipv6 = %q, %v; want 1", name, n.name, v, err)
	}
}
