// Package ports parses Docker's -p port specs, models published port
// bindings and allocates host ports for them. It is pure: no I/O, no clock,
// no package-level state.
package ports

import (
	"fmt"
	"strconv"
	"strings"
)

// Proto is a transport protocol a port can be published for. Its values are
// IP protocol numbers, so they can go straight into an nftables
// inet_proto key.
type Proto uint8

// The protocols a port can be published for.
const (
	TCP Proto = 6
	UDP Proto = 17
)

// String returns "tcp" or "udp", or "proto(N)" for any other value.
func (p Proto) String() string {
	switch p {
	case TCP:
		return "tcp"
	case UDP:
		return "udp"
	}
	return "proto(" + strconv.Itoa(int(p)) + ")"
}

// ParseProto parses "tcp" or "udp" (in any letter case).
func ParseProto(s string) (Proto, error) {
	switch {
	case strings.EqualFold(s, "tcp"):
		return TCP, nil
	case strings.EqualFold(s, "udp"):
		return UDP, nil
	case s == "":
		return 0, fmt.Errorf("empty protocol; only tcp and udp are supported")
	}
	return 0, fmt.Errorf("unknown protocol %q; only tcp and udp are supported", s)
}

// PortRange is an inclusive range of ports. The zero value means "unset";
// a single port is a range whose First equals its Last.
type PortRange struct{ First, Last uint16 }

// SinglePort returns the range holding only port.
func SinglePort(port uint16) PortRange { return PortRange{First: port, Last: port} }

// Len returns how many ports the range holds: 0 for the zero or a reversed range.
func (r PortRange) Len() int {
	if r.IsZero() || r.Last < r.First {
		return 0
	}
	return int(r.Last) - int(r.First) + 1
}

// IsZero reports whether the range is unset.
func (r PortRange) IsZero() bool { return r == PortRange{} }

// Contains reports whether port lies within the range.
func (r PortRange) Contains(port uint16) bool {
	return !r.IsZero() && r.First <= port && port <= r.Last
}

// String returns "80" for a single port, "8000-8005" for a longer range and
// "" for the zero range.
func (r PortRange) String() string {
	switch {
	case r.IsZero():
		return ""
	case r.First == r.Last:
		return strconv.Itoa(int(r.First))
	}
	return strconv.Itoa(int(r.First)) + "-" + strconv.Itoa(int(r.Last))
}

// validate checks that the range is non-empty, in order and does not include
// port 0. what names the range in the error ("container port").
func (r PortRange) validate(what string) error {
	switch {
	case r.IsZero():
		return fmt.Errorf("%s range is unset; want ports within 1-65535", what)
	case r.First == 0:
		return fmt.Errorf("%s range %s includes port 0; want ports 1-65535", what, r)
	case r.Last < r.First:
		return fmt.Errorf("%s range %s is reversed; want first <= last", what, r)
	}
	return nil
}

// Docker's default ephemeral range for host ports it picks
// (net.ipv4.ip_local_port_range is not consulted: Docker does not either).
const (
	ephemeralFirst = 49153
	ephemeralLast  = 60999
)

// DefaultEphemeral returns the range Docker picks host ports from when a spec
// leaves them open: 49153-60999. It is a function so that no caller can
// change it for everyone else.
func DefaultEphemeral() PortRange {
	return PortRange{First: ephemeralFirst, Last: ephemeralLast}
}
