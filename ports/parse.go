package ports

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// maxInputLen bounds what ParseSpec and ParseBinding read. The longest
// canonical spec, "255.255.255.255:65535-65535:65535-65535/tcp", is 43 bytes;
// the slack allows leading zeros without inviting megabyte arguments.
const maxInputLen = 64

// checkInput refuses input no spec or binding can be: empty, too long, or
// padded with whitespace.
func checkInput(s string) error {
	switch {
	case s == "":
		return errors.New("empty")
	case len(s) > maxInputLen:
		return fmt.Errorf("%d bytes long; a valid one is at most %d", len(s), maxInputLen)
	case strings.TrimSpace(s) != s:
		return errors.New("leading or trailing whitespace")
	}
	return nil
}

// isDigits reports whether s is a non-empty run of ASCII digits, so that
// signs ("+80", "-80"), spaces and other number syntax are refused.
func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// parsePort parses one decimal port number. Zero is returned as 0 without an
// error: whether it is allowed is the caller's business. what names the
// field in errors ("container port").
func parsePort(s, what string) (uint16, error) {
	if !isDigits(s) {
		return 0, fmt.Errorf("%s %q is not a number; want a port 1-65535", what, s)
	}
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil {
		return 0, fmt.Errorf("%s %s out of range 1-65535", what, s)
	}
	return uint16(n), nil
}

// parsePortRange parses "80" or "8000-8005". A single "0" (or "00"...)
// yields the zero range when zeroMeansPick is set; port 0 is refused
// anywhere else.
func parsePortRange(s, what string, zeroMeansPick bool) (PortRange, error) {
	firstText, lastText, isRange := strings.Cut(s, "-")
	if !isRange {
		port, err := parsePort(s, what)
		switch {
		case err != nil:
			return PortRange{}, err
		case port == 0 && zeroMeansPick:
			return PortRange{}, nil
		case port == 0:
			return PortRange{}, fmt.Errorf("%s %s out of range 1-65535", what, s)
		}
		return SinglePort(port), nil
	}
	if !isDigits(firstText) || !isDigits(lastText) {
		return PortRange{}, fmt.Errorf("%s %q is not a number or range; want e.g. 80 or 8000-8005", what, s)
	}
	first, err := parsePort(firstText, what)
	if err != nil {
		return PortRange{}, err
	}
	last, err := parsePort(lastText, what)
	if err != nil {
		return PortRange{}, err
	}
	if first == 0 || last == 0 {
		return PortRange{}, fmt.Errorf("%s range %s includes port 0; want ports 1-65535", what, s)
	}
	if last < first {
		return PortRange{}, fmt.Errorf("%s range %s is reversed; want first <= last, e.g. %d-%d", what, s, last, first)
	}
	return PortRange{First: first, Last: last}, nil
}

// parseHostIP parses an IPv4 host address. 0.0.0.0 comes back as itself;
// callers decide whether to normalise it.
func parseHostIP(s string) (netip.Addr, error) {
	if s == "" {
		return netip.Addr{}, errors.New("host IP is empty; omit it or give an IPv4 address such as 127.0.0.1")
	}
	if strings.ContainsAny(s, "[]:") {
		if isIPv6Literal(s) {
			return netip.Addr{}, fmt.Errorf("host IP %s is IPv6; IPv6 is not supported yet, use an IPv4 address", s)
		}
		return netip.Addr{}, fmt.Errorf("host IP %q is not an IPv4 address such as 127.0.0.1", s)
	}
	addr, err := netip.ParseAddr(s)
	if err != nil || !addr.Is4() {
		if strings.IndexFunc(s, isLetter) >= 0 {
			return netip.Addr{}, fmt.Errorf("host IP %q is not an IPv4 address; hostnames are not supported, use e.g. 127.0.0.1", s)
		}
		return netip.Addr{}, fmt.Errorf("host IP %q is not an IPv4 address such as 127.0.0.1", s)
	}
	return addr, nil
}

// isIPv6Literal reports whether s is an IPv6 address, bracketed or not.
func isIPv6Literal(s string) bool {
	if len(s) >= 2 && s[0] == '[' && s[len(s)-1] == ']' {
		s = s[1 : len(s)-1]
	}
	addr, err := netip.ParseAddr(s)
	return err == nil && addr.Is6()
}

func isLetter(r rune) bool { return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' }

// normalizeHostIP maps the zero Addr to 0.0.0.0, which is how Bindings spell
// "every host address".
func normalizeHostIP(addr netip.Addr) netip.Addr {
	if !addr.IsValid() {
		return netip.IPv4Unspecified()
	}
	return addr
}
