package ports

import (
	"errors"
	"fmt"
	"net/netip"
)

// ParseError is returned by ParseSpec and ParseBinding for input that is not
// valid. Its message names the input and says what would be valid.
type ParseError struct {
	Kind  string // what was being parsed: "port spec" or "binding"
	Input string // the input as given
	Err   error  // what is wrong with it
}

// Error returns e.g. `invalid port spec "8080:99999": container port 99999 out of range 1-65535`.
func (e *ParseError) Error() string {
	return fmt.Sprintf("invalid %s %q: %v", e.Kind, e.Input, e.Err)
}

// Unwrap returns the underlying reason.
func (e *ParseError) Unwrap() error { return e.Err }

// ConflictError is returned by Expand when a binding the spec asks for
// clashes with one already published.
type ConflictError struct {
	Wanted   Binding // the binding the spec asked for
	Existing Binding // the published binding it conflicts with
}

// Error names both bindings.
func (e *ConflictError) Error() string {
	return fmt.Sprintf("host port %s:%d/%s for container port %d is already published as %s",
		normalizeHostIP(e.Wanted.HostIP), e.Wanted.HostPort, e.Wanted.Proto, e.Wanted.ContainerPort, e.Existing)
}

// NoFreePortError is returned by Expand when every host port in the range it
// may pick from is taken.
type NoFreePortError struct {
	Range         PortRange  // the host ports Expand was allowed to pick from
	HostIP        netip.Addr // where the port was wanted; 0.0.0.0 = every host address
	ContainerPort uint16
	Proto         Proto
}

// Error returns e.g. "no free host port in 8000-8002 for 80/tcp".
func (e *NoFreePortError) Error() string {
	on := ""
	if hostIP := normalizeHostIP(e.HostIP); !hostIP.IsUnspecified() {
		on = " on " + hostIP.String()
	}
	return fmt.Sprintf("no free host port in %s%s for %d/%s", e.Range, on, e.ContainerPort, e.Proto)
}

// IsConflict reports whether err is or wraps a *ConflictError.
func IsConflict(err error) bool {
	var conflict *ConflictError
	return errors.As(err, &conflict)
}

// IsNoFreePort reports whether err is or wraps a *NoFreePortError.
func IsNoFreePort(err error) bool {
	var noFree *NoFreePortError
	return errors.As(err, &noFree)
}
