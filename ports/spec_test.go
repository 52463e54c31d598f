package ports

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

func TestParseSpecValid(t *testing.T) {
	localhost := netip.MustParseAddr("127.0.0.1")
	tests := []struct {
		in        string
		want      Spec
		canonical string
	}{
		{"80", Spec{ContainerPorts: SinglePort(80), Proto: TCP}, "80/tcp"},
		{"80/tcp", Spec{ContainerPorts: SinglePort(80), Proto: TCP}, "80/tcp"},
		{"80/udp", Spec{ContainerPorts: SinglePort(80), Proto: UDP}, "80/udp"},
		{"80/UDP", Spec{ContainerPorts: SinglePort(80), Proto: UDP}, "80/udp"},
		{"8080:80", Spec{HostPorts: SinglePort(8080), ContainerPorts: SinglePort(80), Proto: TCP}, "8080:80/tcp"},
		{"8080:80/udp", Spec{HostPorts: SinglePort(8080), ContainerPorts: SinglePort(80), Proto: UDP}, "8080:80/udp"},
		{"127.0.0.1:8080:80", Spec{HostIP: localhost, HostPorts: SinglePort(8080), ContainerPorts: SinglePort(80), Proto: TCP}, "127.0.0.1:8080:80/tcp"},
		{"127.0.0.1::80", Spec{HostIP: localhost, ContainerPorts: SinglePort(80), Proto: TCP}, "127.0.0.1::80/tcp"},
		{"127.0.0.1:0:80/udp", Spec{HostIP: localhost, ContainerPorts: SinglePort(80), Proto: UDP}, "127.0.0.1::80/udp"},
		{"0.0.0.0:8080:80", Spec{HostPorts: SinglePort(8080), ContainerPorts: SinglePort(80), Proto: TCP}, "8080:80/tcp"},
		{"0.0.0.0::80", Spec{ContainerPorts: SinglePort(80), Proto: TCP}, "80/tcp"},
		{":80", Spec{ContainerPorts: SinglePort(80), Proto: TCP}, "80/tcp"},
		{"0:80", Spec{ContainerPorts: SinglePort(80), Proto: TCP}, "80/tcp"},
		{"8000-8002:80-82", Spec{HostPorts: PortRange{8000, 8002}, ContainerPorts: PortRange{80, 82}, Proto: TCP}, "8000-8002:80-82/tcp"},
		{"8000-8010:80", Spec{HostPorts: PortRange{8000, 8010}, ContainerPorts: SinglePort(80), Proto: TCP}, "8000-8010:80/tcp"},
		{"80-82", Spec{ContainerPorts: PortRange{80, 82}, Proto: TCP}, "80-82/tcp"},
		{"0:80-82/udp", Spec{ContainerPorts: PortRange{80, 82}, Proto: UDP}, "80-82/udp"},
		{"80-80", Spec{ContainerPorts: SinglePort(80), Proto: TCP}, "80/tcp"},
		{"8080-8080:80-80", Spec{HostPorts: SinglePort(8080), ContainerPorts: SinglePort(80), Proto: TCP}, "8080:80/tcp"},
		{"1:1", Spec{HostPorts: SinglePort(1), ContainerPorts: SinglePort(1), Proto: TCP}, "1:1/tcp"},
		{"65535:65535", Spec{HostPorts: SinglePort(65535), ContainerPorts: SinglePort(65535), Proto: TCP}, "65535:65535/tcp"},
		{"1-65535:1-65535", Spec{HostPorts: PortRange{1, 65535}, ContainerPorts: PortRange{1, 65535}, Proto: TCP}, "1-65535:1-65535/tcp"},
		{"0080", Spec{ContainerPorts: SinglePort(80), Proto: TCP}, "80/tcp"},
		{"10.1.2.3:53:53/udp", Spec{HostIP: netip.MustParseAddr("10.1.2.3"), HostPorts: SinglePort(53), ContainerPorts: SinglePort(53), Proto: UDP}, "10.1.2.3:53:53/udp"},
		{"255.255.255.255:65535-65535:65535-65535/tcp", Spec{HostIP: netip.MustParseAddr("255.255.255.255"), HostPorts: SinglePort(65535), ContainerPorts: SinglePort(65535), Proto: TCP}, "255.255.255.255:65535:65535/tcp"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseSpec(tt.in)
			if err != nil {
				t.Fatalf("ParseSpec(%q): %v", tt.in, err)
			}
			if got != tt.want {
				t.Fatalf("ParseSpec(%q) = %#v, want %#v", tt.in, got, tt.want)
			}
			if err := got.Validate(); err != nil {
				t.Errorf("Validate() of parsed %q: %v", tt.in, err)
			}
			if s := got.String(); s != tt.canonical {
				t.Errorf("String() = %q, want %q", s, tt.canonical)
			}
			again, err := ParseSpec(got.String())
			if err != nil || again != got {
				t.Errorf("ParseSpec(String()) = %#v, %v; want %#v", again, err, got)
			}
		})
	}
}

func TestParseSpecInvalid(t *testing.T) {
	tests := []struct {
		in string
		// wantParts must all appear in the error: the bad value and a hint.
		wantParts []string
	}{
		{"", []string{`""`, "empty", "containerport"}},
		{"8080:99999", []string{`invalid port spec "8080:99999"`, "container port 99999 out of range 1-65535"}},
		{"99999:80", []string{"host port 99999 out of range 1-65535"}},
		{"65536", []string{"container port 65536 out of range"}},
		{"123456789012345678901234567890", []string{"container port 123456789012345678901234567890 out of range"}},
		{"0", []string{"container port 0 out of range 1-65535"}},
		{"8080:0", []string{"container port 0 out of range"}},
		{"0-5:80", []string{"host port range 0-5 includes port 0"}},
		{"80-0", []string{"container port range 80-0 includes port 0"}},
		{"90-80", []string{"container port range 90-80 is reversed", "80-90"}},
		{"9000-8000:80", []string{"host port range 9000-8000 is reversed"}},
		{"http", []string{`container port "http" is not a number`, "1-65535"}},
		{"8080:http", []string{`container port "http" is not a number`}},
		{"abc:80", []string{`host port "abc" is not a number`}},
		{"80-", []string{`container port "80-" is not a number or range`}},
		{"-80", []string{`container port "-80" is not a number or range`}},
		{"80--90", []string{`"80--90"`}},
		{"80-90-100", []string{`"80-90-100"`}},
		{"+80", []string{`container port "+80" is not a number`}},
		{"+8080:80", []string{`host port "+8080" is not a number`}},
		{"-8080:80", []string{`host port "-8080" is not a number or range`}},
		{"0x50", []string{`"0x50" is not a number`}},
		{"80.0", []string{`"80.0" is not a number`}},
		{"80/sctp", []string{`"sctp"`, "only tcp and udp are supported"}},
		{"80/", []string{"empty protocol", "only tcp and udp"}},
		{"80/tcp/udp", []string{`"tcp/udp"`, "only tcp and udp"}},
		{"80/6", []string{`"6"`, "only tcp and udp"}},
		{"[::1]:80:80", []string{"::1", "IPv6 is not supported yet"}},
		{"[::1]::80", []string{"IPv6 is not supported yet"}},
		{"::1:80:80", []string{"::1", "IPv6 is not supported yet"}},
		{"fe80::1:8080:80/udp", []string{"fe80::1", "IPv6 is not supported yet"}},
		{"::ffff:127.0.0.1:80:80", []string{"IPv6 is not supported yet"}},
		{"[127.0.0.1]:80:80", []string{`"[127.0.0.1]" is not an IPv4 address`}},
		{"80[", []string{"unexpected '['"}},
		{"localhost:8080:80", []string{`host IP "localhost"`, "hostnames are not supported"}},
		{"example.com:80:80", []string{`"example.com"`, "hostnames are not supported"}},
		{"1.2.3:80:80", []string{`host IP "1.2.3" is not an IPv4 address`}},
		{"256.0.0.1:80:80", []string{`host IP "256.0.0.1"`}},
		{"127.000.0.1:80:80", []string{`host IP "127.000.0.1"`}},
		{"::80", []string{"host IP is empty"}},
		{"1.2.3.4:80:80:80", []string{"too many ':'", "1.2.3.4:80:80:80"}},
		{"1.2.3.4:80:80:", []string{"too many ':'"}},
		{":::80", []string{"host IP :: is IPv6"}},
		{"1:2:3:4", []string{"too many ':'"}},
		{"8080:", []string{"container port is empty"}},
		{"127.0.0.1:8080:", []string{"container port is empty"}},
		{"/tcp", []string{"container port is empty"}},
		{" 80", []string{`" 80"`, "whitespace"}},
		{"80 ", []string{"whitespace"}},
		{"8080:80\n", []string{"whitespace"}},
		{"8080: 80", []string{`container port " 80" is not a number`}},
		{"8000-8001:80-82", []string{"host port range 8000-8001 has 2 ports", "container port range 80-82 has 3"}},
		{"8080:80-82", []string{"host port range 8080 has 1 ports", "80-82 has 3"}},
		{strings.Repeat("1", 65), []string{"65 bytes long", "at most 64"}},
		{strings.Repeat("8080:", 1000) + "80", []string{"5002 bytes long"}},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseSpec(tt.in)
			if err == nil {
				t.Fatalf("ParseSpec(%q) = %v, want an error", tt.in, got)
			}
			var parseErr *ParseError
			if !errors.As(err, &parseErr) || parseErr.Input != tt.in {
				t.Errorf("error %v is not a *ParseError for %q", err, tt.in)
			}
			if got != (Spec{}) {
				t.Errorf("ParseSpec(%q) returned %#v with its error, want the zero Spec", tt.in, got)
			}
			for _, part := range tt.wantParts {
				if !strings.Contains(err.Error(), part) {
					t.Errorf("error %q does not mention %q", err, part)
				}
			}
		})
	}
}

func TestSpecValidate(t *testing.T) {
	tests := []struct {
		name    string
		spec    Spec
		wantErr string
	}{
		{"zero proto means tcp", Spec{ContainerPorts: SinglePort(80)}, ""},
		{"explicit 0.0.0.0", Spec{HostIP: netip.IPv4Unspecified(), ContainerPorts: SinglePort(80)}, ""},
		{"no container port", Spec{}, "no container port"},
		{"container port 0", Spec{ContainerPorts: PortRange{0, 5}}, "port 0"},
		{"reversed container", Spec{ContainerPorts: PortRange{90, 80}}, "reversed"},
		{"reversed host", Spec{HostPorts: PortRange{90, 80}, ContainerPorts: SinglePort(80)}, "host port range 90-80 is reversed"},
		{"ipv6", Spec{HostIP: netip.MustParseAddr("::1"), ContainerPorts: SinglePort(80)}, "only IPv4"},
		{"sctp", Spec{ContainerPorts: SinglePort(80), Proto: 132}, "proto(132)"},
		{"length mismatch", Spec{HostPorts: PortRange{1, 2}, ContainerPorts: PortRange{1, 3}}, "equal length"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.spec.Validate()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("Validate(): %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("Validate() = %v, want error mentioning %q", err, tt.wantErr)
			}
		})
	}
}

func TestPortRange(t *testing.T) {
	tests := []struct {
		r       PortRange
		wantLen int
		wantStr string
		isZero  bool
	}{
		{PortRange{}, 0, "", true},
		{SinglePort(80), 1, "80", false},
		{PortRange{8000, 8005}, 6, "8000-8005", false},
		{PortRange{1, 65535}, 65535, "1-65535", false},
		{PortRange{90, 80}, 0, "90-80", false},
	}
	for _, tt := range tests {
		if got := tt.r.Len(); got != tt.wantLen {
			t.Errorf("%#v.Len() = %d, want %d", tt.r, got, tt.wantLen)
		}
		if got := tt.r.String(); got != tt.wantStr {
			t.Errorf("%#v.String() = %q, want %q", tt.r, got, tt.wantStr)
		}
		if got := tt.r.IsZero(); got != tt.isZero {
			t.Errorf("%#v.IsZero() = %v, want %v", tt.r, got, tt.isZero)
		}
	}
	if r := (PortRange{8000, 8005}); !r.Contains(8000) || !r.Contains(8005) || r.Contains(7999) || r.Contains(8006) {
		t.Errorf("Contains is wrong at the edges of %v", r)
	}
	if (PortRange{}).Contains(0) {
		t.Error("the zero range contains port 0")
	}
	if got := DefaultEphemeral(); got != (PortRange{49153, 60999}) {
		t.Errorf("DefaultEphemeral() = %v, want 49153-60999", got)
	}
}

func TestProto(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want Proto
	}{{"tcp", TCP}, {"TCP", TCP}, {"udp", UDP}, {"Udp", UDP}} {
		if got, err := ParseProto(tt.in); err != nil || got != tt.want {
			t.Errorf("ParseProto(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{"", "sctp", "icmp", "6", " tcp", "tcp "} {
		if _, err := ParseProto(bad); err == nil || !strings.Contains(err.Error(), "only tcp and udp") {
			t.Errorf("ParseProto(%q) error = %v, want one saying only tcp and udp are supported", bad, err)
		}
	}
	if TCP.String() != "tcp" || UDP.String() != "udp" || Proto(1).String() != "proto(1)" {
		t.Errorf("Proto.String: got %q %q %q", TCP, UDP, Proto(1))
	}
	if TCP != 6 || UDP != 17 {
		t.Error("Proto values must be IP protocol numbers")
	}
}
