package ports

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// specSyntax is appended to errors about the shape of a spec.
const specSyntax = "want [hostip:][hostport:]containerport[/proto], e.g. 127.0.0.1:8080:80/tcp"

// Spec is one -p argument: [hostip:][hostport:]containerport[/proto], where
// either port may be a range "a-b".
type Spec struct {
	// HostIP is the IPv4 address to publish on. The zero Addr means every
	// host address; ParseSpec turns an explicit 0.0.0.0 into the zero Addr
	// so that equal meanings compare equal.
	HostIP netip.Addr
	// HostPorts is the host side. Zero means "pick a free ephemeral port";
	// a range longer than a single ContainerPorts means "pick one free port
	// from this range"; otherwise it pairs with ContainerPorts port by port.
	HostPorts PortRange
	// ContainerPorts is the container side; never zero in a valid Spec.
	ContainerPorts PortRange
	// Proto is TCP or UDP. ParseSpec defaults it to TCP; the zero value
	// in a Spec built by hand also means TCP.
	Proto Proto
}

// ParseSpec parses one Docker -p argument such as "80", "8080:80",
// "127.0.0.1:8080:80", "127.0.0.1::80", "8000-8002:80-82/udp" or
// "8000-8010:80". A host port of 0 or an empty host port means "pick one".
// Errors are *ParseError and name the bad value.
func ParseSpec(s string) (Spec, error) {
	spec, err := parseSpec(s)
	if err != nil {
		return Spec{}, &ParseError{Kind: "port spec", Input: s, Err: err}
	}
	return spec, nil
}

func parseSpec(s string) (Spec, error) {
	if err := checkInput(s); err != nil {
		return Spec{}, fmt.Errorf("%w; %s", err, specSyntax)
	}
	portsText, protoText, hasProto := strings.Cut(s, "/")
	spec := Spec{Proto: TCP}
	if hasProto {
		proto, err := ParseProto(protoText)
		if err != nil {
			return Spec{}, err
		}
		spec.Proto = proto
	}
	fields, err := splitSpecFields(portsText)
	if err != nil {
		return Spec{}, err
	}
	containerText := fields[len(fields)-1]
	if containerText == "" {
		return Spec{}, fmt.Errorf("container port is empty; %s", specSyntax)
	}
	if spec.ContainerPorts, err = parsePortRange(containerText, "container port", false); err != nil {
		return Spec{}, err
	}
	if len(fields) >= 2 && fields[len(fields)-2] != "" {
		if spec.HostPorts, err = parsePortRange(fields[len(fields)-2], "host port", true); err != nil {
			return Spec{}, err
		}
	}
	if len(fields) == 3 {
		hostIP, err := parseHostIP(fields[0])
		if err != nil {
			return Spec{}, err
		}
		if !hostIP.IsUnspecified() {
			spec.HostIP = hostIP
		}
	}
	if err := checkRangeLengths(spec.HostPorts, spec.ContainerPorts); err != nil {
		return Spec{}, err
	}
	return spec, nil
}

// splitSpecFields splits "[hostip:][hostport:]containerport" into its one to
// three fields, recognising IPv6 host addresses to say they are unsupported.
func splitSpecFields(s string) ([]string, error) {
	if strings.HasPrefix(s, "[") {
		if end := strings.IndexByte(s, ']'); end > 0 {
			return nil, hostIPError(s[:end+1])
		}
	}
	if strings.ContainsAny(s, "[]") {
		return nil, fmt.Errorf("unexpected '[' or ']' in %q; %s", s, specSyntax)
	}
	fields := strings.Split(s, ":")
	if len(fields) <= 3 {
		return fields, nil
	}
	// An IPv6 address followed by ":hostport:containerport" or ":containerport".
	for _, ipFields := range []int{len(fields) - 2, len(fields) - 1} {
		if candidate := strings.Join(fields[:ipFields], ":"); isIPv6Literal(candidate) {
			return nil, hostIPError(candidate)
		}
	}
	return nil, fmt.Errorf("too many ':' separators in %q; %s", s, specSyntax)
}

// hostIPError explains why text is not a usable host IP.
func hostIPError(text string) error {
	if _, err := parseHostIP(text); err != nil {
		return err
	}
	return fmt.Errorf("host IP %q is misplaced; %s", text, specSyntax)
}

// checkRangeLengths enforces Docker's pairing rule: a host range pairs with a
// container range of equal length, or offers a pick for a single container
// port.
func checkRangeLengths(hostPorts, containerPorts PortRange) error {
	if hostPorts.IsZero() || containerPorts.Len() == 1 || hostPorts.Len() == containerPorts.Len() {
		return nil
	}
	return fmt.Errorf("host port range %s has %d ports but container port range %s has %d; "+
		"give ranges of equal length, or a single container port to pick one host port from the range",
		hostPorts, hostPorts.Len(), containerPorts, containerPorts.Len())
}

// proto returns the spec's protocol, reading the zero value as TCP.
func (s Spec) proto() Proto {
	if s.Proto == 0 {
		return TCP
	}
	return s.Proto
}

// Validate reports whether the spec is one ParseSpec could have produced (up
// to the zero Proto and an explicit 0.0.0.0, which are accepted). Expand
// calls it, so hand-built specs get the same checks as parsed ones.
func (s Spec) Validate() error {
	if s.HostIP.IsValid() && !s.HostIP.Is4() {
		return fmt.Errorf("host IP %s: only IPv4 is supported yet", s.HostIP)
	}
	if p := s.proto(); p != TCP && p != UDP {
		return fmt.Errorf("protocol %s: only tcp and udp are supported", p)
	}
	if s.ContainerPorts.IsZero() {
		return errors.New("no container port")
	}
	if err := s.ContainerPorts.validate("container port"); err != nil {
		return err
	}
	if !s.HostPorts.IsZero() {
		if err := s.HostPorts.validate("host port"); err != nil {
			return err
		}
	}
	return checkRangeLengths(s.HostPorts, s.ContainerPorts)
}

// String returns the canonical form, which ParseSpec parses back to the same
// Spec: "80/tcp", "8080:80/tcp", "127.0.0.1::80/udp",
// "127.0.0.1:8000-8002:80-82/tcp". The protocol is always written.
func (s Spec) String() string {
	var b strings.Builder
	if s.HostIP.IsValid() {
		b.WriteString(s.HostIP.String())
		b.WriteByte(':')
	}
	if !s.HostPorts.IsZero() {
		b.WriteString(s.HostPorts.String())
		b.WriteByte(':')
	} else if s.HostIP.IsValid() {
		b.WriteByte(':')
	}
	b.WriteString(s.ContainerPorts.String())
	b.WriteByte('/')
	b.WriteString(s.proto().String())
	return b.String()
}
