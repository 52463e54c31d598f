package ports

import (
	"errors"
	"net/netip"
	"testing"
)

// FuzzParseSpec checks that ParseSpec never panics, that anything it accepts
// is valid and in range, and that String writes a form that parses back to
// the identical Spec.
func FuzzParseSpec(f *testing.F) {
	for _, seed := range []string{
		"80", "80/tcp", "80/udp", "80/UDP", "8080:80", "8080:80/udp", "0:80", ":80",
		"127.0.0.1:8080:80", "127.0.0.1::80", "0.0.0.0:8080:80", "0.0.0.0::80/udp",
		"8000-8002:80-82", "8000-8010:80", "80-82", "1-65535:1-65535", "65535:65535",
		"255.255.255.255:65535-65535:65535-65535/tcp", "0080", "10.1.2.3:53:53/udp",
		"", "0", "8080:0", "8080:99999", "65536", "90-80", "0-5:80", "80-0", "80-", "-80",
		"+80", "80--90", "80-90-100", "http", "0x50", "80/sctp", "80/", "80/tcp/udp",
		"[::1]:80:80", "::1:80:80", "fe80::1:8080:80", "::ffff:127.0.0.1:80:80",
		"[127.0.0.1]:80:80", "localhost:8080:80", "1.2.3:80:80", "127.000.0.1:80:80",
		"::80", ":::80", "1.2.3.4:80:80:80", "8080:", "/tcp", " 80", "80 ", "8080: 80",
		"8000-8001:80-82", "8080:80-82", "99999999999999999999999:80", "1.2.3.4%eth0:80:80",
		"80/tcp\x00", "８０", "80/tcp", "127.0.0.1:8080-8080:80-80/udp",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, input string) {
		spec, err := ParseSpec(input)
		if err != nil {
			var parseErr *ParseError
			if !errors.As(err, &parseErr) || parseErr.Input != input {
				t.Fatalf("ParseSpec(%q) error %v is not a *ParseError naming the input", input, err)
			}
			if spec != (Spec{}) {
				t.Fatalf("ParseSpec(%q) returned %#v alongside its error", input, spec)
			}
			return
		}
		checkSpecInRange(t, input, spec)
		canonical := spec.String()
		again, err := ParseSpec(canonical)
		if err != nil {
			t.Fatalf("ParseSpec(%q) = %#v, but its String %q does not parse: %v", input, spec, canonical, err)
		}
		if again != spec {
			t.Fatalf("ParseSpec(%q) = %#v, but String %q parses to %#v", input, spec, canonical, again)
		}
		if again.String() != canonical {
			t.Fatalf("String is not stable: %q then %q", canonical, again.String())
		}
		checkExpand(t, spec)
	})
}

// checkExpand expands spec against a few published ports and checks that
// whatever it returns is in range and conflict-free.
func checkExpand(t *testing.T, spec Spec) {
	t.Helper()
	taken := []Binding{
		{Proto: TCP, HostIP: netip.IPv4Unspecified(), HostPort: 80, ContainerPort: 80},
		{Proto: UDP, HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: 53, ContainerPort: 53},
		{Proto: TCP, HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: 40000, ContainerPort: 80},
	}
	ephemeral := PortRange{First: 40000, Last: 40003}
	got, err := Expand(spec, taken, ephemeral)
	if err != nil {
		if !IsConflict(err) && !IsNoFreePort(err) {
			t.Fatalf("Expand(%s): unexpected kind of error %v", spec, err)
		}
		return
	}
	if len(got) != spec.ContainerPorts.Len() {
		t.Fatalf("Expand(%s) gave %d bindings, want %d", spec, len(got), spec.ContainerPorts.Len())
	}
	allowed := spec.HostPorts
	if allowed.IsZero() {
		allowed = ephemeral
	}
	for i, b := range got {
		if !allowed.Contains(b.HostPort) || b.ContainerPort != spec.ContainerPorts.First+uint16(i) {
			t.Fatalf("Expand(%s) gave %s, outside %v", spec, b, allowed)
		}
		for _, other := range append(taken, got[:i]...) {
			if b.Conflicts(other) {
				t.Fatalf("Expand(%s) gave %s, which conflicts with %s", spec, b, other)
			}
		}
	}
}

// FuzzParseBinding checks that ParseBinding never panics and that String
// writes back a form that parses to the identical Binding.
func FuzzParseBinding(f *testing.F) {
	for _, seed := range []string{
		"0.0.0.0:8080->80/tcp", "127.0.0.1:53->53/udp", "0.0.0.0:8080->80", "8080->80/tcp",
		"0.0.0.0:0->80/tcp", "[::1]:8080->80/tcp", "0.0.0.0:8080->80/sctp", "",
		"0.0.0.0:8080->80->81/tcp", "localhost:1->1",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, input string) {
		b, err := ParseBinding(input)
		if err != nil {
			return
		}
		if b.HostPort == 0 || b.ContainerPort == 0 || !b.HostIP.Is4() || (b.Proto != TCP && b.Proto != UDP) {
			t.Fatalf("ParseBinding(%q) = %#v, which is out of range", input, b)
		}
		again, err := ParseBinding(b.String())
		if err != nil || again != b {
			t.Fatalf("ParseBinding(%q) = %#v, but String %q parses to %#v, %v", input, b, b.String(), again, err)
		}
	})
}

// checkSpecInRange fails the test unless spec is one ParseSpec may return.
func checkSpecInRange(t *testing.T, input string, spec Spec) {
	t.Helper()
	if err := spec.Validate(); err != nil {
		t.Fatalf("ParseSpec(%q) = %#v, which does not validate: %v", input, spec, err)
	}
	container, host := spec.ContainerPorts, spec.HostPorts
	if container.First < 1 || container.Last < container.First {
		t.Fatalf("ParseSpec(%q): container ports %v out of range", input, container)
	}
	if !host.IsZero() && (host.First < 1 || host.Last < host.First) {
		t.Fatalf("ParseSpec(%q): host ports %v out of range", input, host)
	}
	if spec.Proto != TCP && spec.Proto != UDP {
		t.Fatalf("ParseSpec(%q): protocol %v", input, spec.Proto)
	}
	if spec.HostIP.IsValid() && (!spec.HostIP.Is4() || spec.HostIP.IsUnspecified()) {
		t.Fatalf("ParseSpec(%q): host IP %v is not a specific IPv4 address", input, spec.HostIP)
	}
	if !host.IsZero() && container.Len() > 1 && host.Len() != container.Len() {
		t.Fatalf("ParseSpec(%q): host range %v and container range %v differ in length", input, host, container)
	}
}
