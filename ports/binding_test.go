package ports

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

// bind builds a Binding from "hostip:hostport->containerport/proto" or fails the test.
func bind(t testing.TB, s string) Binding {
	t.Helper()
	b, err := ParseBinding(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestBindingStringRoundTrip(t *testing.T) {
	tests := []struct {
		binding Binding
		want    string
	}{
		{Binding{Proto: TCP, HostIP: netip.IPv4Unspecified(), HostPort: 8080, ContainerPort: 80}, "0.0.0.0:8080->80/tcp"},
		{Binding{Proto: UDP, HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: 53, ContainerPort: 5353}, "127.0.0.1:53->5353/udp"},
		{Binding{Proto: TCP, HostIP: netip.MustParseAddr("10.0.0.1"), HostPort: 65535, ContainerPort: 1}, "10.0.0.1:65535->1/tcp"},
	}
	for _, tt := range tests {
		if got := tt.binding.String(); got != tt.want {
			t.Errorf("String() = %q, want %q", got, tt.want)
		}
		parsed, err := ParseBinding(tt.want)
		if err != nil || parsed != tt.binding {
			t.Errorf("ParseBinding(%q) = %#v, %v; want %#v", tt.want, parsed, err, tt.binding)
		}
	}
	// The zero Addr prints as every address.
	zero := Binding{Proto: TCP, HostPort: 8080, ContainerPort: 80}
	if got := zero.String(); got != "0.0.0.0:8080->80/tcp" {
		t.Errorf("String() with the zero HostIP = %q, want 0.0.0.0:8080->80/tcp", got)
	}
	// The protocol may be left off and means tcp.
	if got := bind(t, "0.0.0.0:8080->80"); got.Proto != TCP {
		t.Errorf("ParseBinding without a protocol gave %v, want tcp", got.Proto)
	}
}

func TestParseBindingInvalid(t *testing.T) {
	tests := []struct {
		in        string
		wantParts []string
	}{
		{"", []string{"empty", "0.0.0.0:8080->80/tcp"}},
		{"0.0.0.0:8080", []string{`missing "->"`}},
		{"8080->80/tcp", []string{`host side "8080" has no ':'`}},
		{"0.0.0.0:0->80/tcp", []string{"host port 0 out of range 1-65535"}},
		{"0.0.0.0:8080->0/tcp", []string{"container port 0 out of range"}},
		{"0.0.0.0:70000->80/tcp", []string{"host port 70000 out of range"}},
		{"0.0.0.0:8080->80-82/tcp", []string{`container port "80-82" is not a number`}},
		{"0.0.0.0:8000-8002->80/tcp", []string{`host port "8000-8002" is not a number`}},
		{"0.0.0.0:8080->80/sctp", []string{`"sctp"`, "only tcp and udp"}},
		{"[::1]:8080->80/tcp", []string{"IPv6 is not supported yet"}},
		{"::1:8080->80/tcp", []string{"IPv6 is not supported yet"}},
		{"localhost:8080->80/tcp", []string{"hostnames are not supported"}},
		{":8080->80/tcp", []string{"host IP is empty"}},
		{" 0.0.0.0:8080->80/tcp", []string{"whitespace"}},
		{"0.0.0.0:+8080->80/tcp", []string{`"+8080"`}},
		{"0.0.0.0:8080->80->81/tcp", []string{`"80->81"`}},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			_, err := ParseBinding(tt.in)
			if err == nil {
				t.Fatalf("ParseBinding(%q) succeeded, want an error", tt.in)
			}
			var parseErr *ParseError
			if !errors.As(err, &parseErr) || parseErr.Kind != "binding" || parseErr.Input != tt.in {
				t.Errorf("error %v is not a binding *ParseError for %q", err, tt.in)
			}
			for _, part := range tt.wantParts {
				if !strings.Contains(err.Error(), part) {
					t.Errorf("error %q does not mention %q", err, part)
				}
			}
		})
	}
}

func TestBindingConflicts(t *testing.T) {
	tests := []struct {
		a, b string
		want bool
	}{
		{"0.0.0.0:8080->80/tcp", "0.0.0.0:8080->80/tcp", true},
		{"0.0.0.0:8080->80/tcp", "0.0.0.0:8080->81/tcp", true}, // container port is irrelevant
		{"0.0.0.0:8080->80/tcp", "127.0.0.1:8080->80/tcp", true},
		{"127.0.0.1:8080->80/tcp", "0.0.0.0:8080->80/tcp", true},
		{"127.0.0.1:8080->80/tcp", "127.0.0.1:8080->90/tcp", true},
		{"127.0.0.1:8080->80/tcp", "127.0.0.2:8080->80/tcp", false},
		{"0.0.0.0:8080->80/tcp", "0.0.0.0:8080->80/udp", false},
		{"0.0.0.0:8080->80/tcp", "0.0.0.0:8081->80/tcp", false},
		{"10.0.0.1:53->53/udp", "0.0.0.0:53->53/udp", true},
	}
	for _, tt := range tests {
		a, b := bind(t, tt.a), bind(t, tt.b)
		if got := a.Conflicts(b); got != tt.want {
			t.Errorf("%s.Conflicts(%s) = %v, want %v", a, b, got, tt.want)
		}
		if got := b.Conflicts(a); got != tt.want {
			t.Errorf("Conflicts is not symmetric: %s.Conflicts(%s) = %v", b, a, got)
		}
	}
	// The zero HostIP means every address, just like 0.0.0.0.
	zeroIP := Binding{Proto: TCP, HostPort: 8080, ContainerPort: 80}
	if !zeroIP.Conflicts(bind(t, "127.0.0.1:8080->80/tcp")) || !zeroIP.Conflicts(bind(t, "0.0.0.0:8080->1/tcp")) {
		t.Error("a Binding with the zero HostIP does not conflict like 0.0.0.0")
	}
}
