package ports

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// bindingSyntax is appended to errors about the shape of a binding.
const bindingSyntax = "want hostip:hostport->containerport/proto, e.g. 0.0.0.0:8080->80/tcp"

// Binding is one concrete published port: traffic for HostIP:HostPort goes
// to ContainerPort on the endpoint.
type Binding struct {
	Proto Proto
	// HostIP is 0.0.0.0 for every host address. The zero Addr is read the
	// same way; Expand always fills in 0.0.0.0.
	HostIP        netip.Addr
	HostPort      uint16
	ContainerPort uint16
}

// String returns the Docker-like form "0.0.0.0:8080->80/tcp", which
// ParseBinding reads back.
func (b Binding) String() string {
	return netip.AddrPortFrom(normalizeHostIP(b.HostIP), b.HostPort).String() +
		"->" + strconv.Itoa(int(b.ContainerPort)) + "/" + b.Proto.String()
}

// ParseBinding parses the form Binding.String writes,
// "hostip:hostport->containerport/proto". The protocol may be left off and
// then means tcp. Errors are *ParseError and name the bad value.
func ParseBinding(s string) (Binding, error) {
	binding, err := parseBinding(s)
	if err != nil {
		return Binding{}, &ParseError{Kind: "binding", Input: s, Err: err}
	}
	return binding, nil
}

func parseBinding(s string) (Binding, error) {
	if err := checkInput(s); err != nil {
		return Binding{}, fmt.Errorf("%w; %s", err, bindingSyntax)
	}
	hostText, containerText, ok := strings.Cut(s, "->")
	if !ok {
		return Binding{}, fmt.Errorf("missing \"->\"; %s", bindingSyntax)
	}
	binding := Binding{Proto: TCP}
	containerText, protoText, hasProto := strings.Cut(containerText, "/")
	if hasProto {
		proto, err := ParseProto(protoText)
		if err != nil {
			return Binding{}, err
		}
		binding.Proto = proto
	}
	var err error
	if binding.ContainerPort, err = parseNonZeroPort(containerText, "container port"); err != nil {
		return Binding{}, err
	}
	colon := strings.LastIndexByte(hostText, ':')
	if colon < 0 {
		return Binding{}, fmt.Errorf("host side %q has no ':'; %s", hostText, bindingSyntax)
	}
	if binding.HostIP, err = parseHostIP(hostText[:colon]); err != nil {
		return Binding{}, err
	}
	if binding.HostPort, err = parseNonZeroPort(hostText[colon+1:], "host port"); err != nil {
		return Binding{}, err
	}
	return binding, nil
}

// parseNonZeroPort parses a single port 1-65535.
func parseNonZeroPort(s, what string) (uint16, error) {
	port, err := parsePort(s, what)
	if err == nil && port == 0 {
		err = fmt.Errorf("%s %s out of range 1-65535", what, s)
	}
	return port, err
}

// Conflicts reports whether b and o cannot both be published: the same
// protocol and host port on overlapping host addresses (equal, or either
// one is every address). Container ports do not matter.
func (b Binding) Conflicts(o Binding) bool {
	if b.Proto != o.Proto || b.HostPort != o.HostPort {
		return false
	}
	bIP, oIP := normalizeHostIP(b.HostIP), normalizeHostIP(o.HostIP)
	return bIP == oIP || bIP.IsUnspecified() || oIP.IsUnspecified()
}
