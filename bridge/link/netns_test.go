package link

import (
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestOpenNetNS(t *testing.T) {
	ns := newTestNS(t)
	for _, spec := range []string{ns.name, "/run/netns/" + ns.name, "/proc/self/ns/net"} {
		h, err := OpenNetNS(spec)
		if err != nil {
			t.Errorf("OpenNetNS(%q): %v", spec, err)
			continue
		}
		h.Close()
	}
	if err := New().NetNSExists(ns.name); err != nil {
		t.Errorf("NetNSExists(%q): %v", ns.name, err)
	}

	plain := filepath.Join(t.TempDir(), "plain")
	if err := os.WriteFile(plain, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		spec, wantErr string
	}{
		{"nbtest-no-such-ns", `network namespace "nbtest-no-such-ns" does not exist (no /run/netns/nbtest-no-such-ns)`},
		{"/proc/self/ns/nope", `"/proc/self/ns/nope" does not exist`},
		{plain, "is not a network namespace: not a namespace file"},
		{"/proc/self/ns/uts", "is not a network namespace: it is a namespace of another kind"},
		{"relative/path", "must be absolute"},
		{"", "network namespace is empty"},
		{"..", "is not valid"},
	}
	for _, tc := range tests {
		h, err := OpenNetNS(tc.spec)
		if err == nil {
			h.Close()
		}
		if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("OpenNetNS(%q) = %v, want error containing %q", tc.spec, err, tc.wantErr)
		}
	}
}

// TestSysctlsInNamespace works on sysctls of a fresh namespace only, and
// checks the test's own namespace is untouched.
func TestSysctlsInNamespace(t *testing.T) {
	ns := newTestNS(t)
	hostForwardBefore, err := GetSysctl(sysctlIPForward)
	if err != nil {
		t.Fatal(err)
	}
	m := NewIn(ns.ns)

	if changed, err := m.SetSysctl(sysctlIPForward, "0"); err != nil || changed {
		t.Fatalf("SetSysctl(ip_forward=0) in a fresh namespace = %v, %v; want unchanged", changed, err)
	}
	if changed, err := m.EnsureForwarding(); err != nil || !changed {
		t.Fatalf("EnsureForwarding = %v, %v; want changed", changed, err)
	}
	if changed, err := m.EnsureForwarding(); err != nil || changed {
		t.Fatalf("EnsureForwarding again = %v, %v; want unchanged", changed, err)
	}
	if v, err := m.GetSysctl(sysctlIPForward); err != nil || v != "1" {
		t.Fatalf("ip_forward = %q, %v", v, err)
	}

	if err := m.EnsureBridge("nbt-br0", netip.MustParsePrefix("172.30.0.1/16"), 0); err != nil {
		t.Fatal(err)
	}
	if err := m.EnableRouteLocalnet("nbt-br0"); err != nil {
		t.Fatalf("EnableRouteLocalnet: %v", err)
	}
	if v, err := m.GetSysctl("net/ipv4/conf/nbt-br0/route_localnet"); err != nil || v != "1" {
		t.Fatalf("route_localnet = %q, %v", v, err)
	}
	// Bridge netfilter goes on for this bridge only; the namespace-wide
	// switch keeps whatever value it had.
	if err := m.EnsureBridge("nbt-br1", netip.MustParsePrefix("172.31.0.1/16"), 0); err != nil {
		t.Fatal(err)
	}
	if err := m.EnableBridgeNetfilter("nbt-br0"); err != nil {
		t.Fatalf("EnableBridgeNetfilter: %v", err)
	}
	if err := m.EnableBridgeNetfilter("nbt-nope"); err == nil || !strings.Contains(err.Error(), `"nbt-nope" does not exist`) {
		t.Errorf("EnableBridgeNetfilter of a missing bridge = %v, want an error naming it", err)
	}
	wholeBefore, err := m.GetSysctl(sysctlBridgeNFIptables)
	if err != nil {
		t.Fatal(err)
	}
	for bridge, want := range map[string]string{"nbt-br0": "nf_call_iptables 1", "nbt-br1": "nf_call_iptables 0"} {
		out, err := exec.Command("ip", "-n", ns.name, "-d", "link", "show", bridge).CombinedOutput()
		if err != nil || !strings.Contains(string(out), want) {
			t.Errorf("ip -d link show %s: want %q in:\n%s (%v)", bridge, want, out, err)
		}
	}
	if after, err := m.GetSysctl(sysctlBridgeNFIptables); err != nil || after != wholeBefore {
		t.Errorf("bridge-nf-call-iptables went from %q to %q (%v); it is the host's", wholeBefore, after, err)
	}

	if after, err := GetSysctl(sysctlIPForward); err != nil || after != hostForwardBefore {
		t.Errorf("the test's own ip_forward went from %q to %q (%v)", hostForwardBefore, after, err)
	}
}

func TestSysctlPathValidation(t *testing.T) {
	for _, path := range []string{"", "/proc/sys/net/ipv4/ip_forward", "../../etc/passwd", "net/../../x", "net//ipv4"} {
		if _, err := New().SetSysctl(path, "1"); err == nil || !strings.Contains(err.Error(), "want a relative path") {
			t.Errorf("SetSysctl(%q) = %v, want a path error", path, err)
		}
	}
	if _, err := New().GetSysctl("net/ipv4/conf/nbt-no-such-if/route_localnet"); err == nil {
		t.Error("GetSysctl of a missing interface's sysctl succeeded")
	}
}
