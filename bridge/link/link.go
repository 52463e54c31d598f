// Package link does nftbridge's netlink plumbing: bridges, veth pairs into
// container namespaces, and the sysctls bridged networking needs.
//
// A Manager acts in one network namespace, the caller's own by default.
// Every call opens its own netlink handle bound to that namespace, so no
// goroutine ever has to switch namespaces for link, address or route work.
package link

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// maxIfNameLen is IFNAMSIZ minus the terminating NUL.
const maxIfNameLen = 15

// dumpAttempts bounds retries of dumps the kernel reports as interrupted
// (a concurrent change); the dump is consistent again on the next try.
const dumpAttempts = 5

// Manager creates and removes bridges and veth pairs. It has no state beyond
// the namespace it acts in and is safe for concurrent use.
type Manager struct {
	ns netns.NsHandle // netns.None(): the namespace of the calling thread
}

// New returns a Manager acting in the caller's (host) network namespace.
func New() *Manager {
	return &Manager{ns: netns.None()}
}

// NewIn returns a Manager acting in ns instead of the caller's namespace:
// bridges and host-side veth ends are created there, and sysctls are read
// and written there. The caller keeps ownership of ns and must keep it open
// while the Manager is in use.
func NewIn(ns netns.NsHandle) *Manager {
	return &Manager{ns: ns}
}

// handle opens a netlink handle in the Manager's namespace, for routing
// messages only by default: a handle for every family also opens an XFRM
// socket, which fails on kernels without xfrm_user loaded.
func (m *Manager) handle(families ...int) (*netlink.Handle, error) {
	if len(families) == 0 {
		families = []int{unix.NETLINK_ROUTE}
	}
	h, err := netlink.NewHandleAt(m.ns, families...)
	if err != nil {
		return nil, fmt.Errorf("open netlink socket: %w", err)
	}
	return h, nil
}

// LinkExists reports whether an interface called name exists, of any kind.
func (m *Manager) LinkExists(name string) (bool, error) {
	h, err := m.handle()
	if err != nil {
		return false, err
	}
	defer h.Close()
	l, err := linkByName(h, name)
	if err != nil {
		return false, fmt.Errorf("look up link %q: %w", name, err)
	}
	return l != nil, nil
}

// IsNotFound reports whether err says that a link does not exist.
func IsNotFound(err error) bool {
	var notFound netlink.LinkNotFoundError
	return errors.As(err, &notFound)
}

// linkByName returns the link, or nil and no error when it does not exist.
func linkByName(h *netlink.Handle, name string) (netlink.Link, error) {
	l, err := retryDump(func() (netlink.Link, error) { return h.LinkByName(name) })
	if IsNotFound(err) {
		return nil, nil
	}
	return l, err
}

// retryDump repeats a netlink dump while the kernel says it was interrupted
// by a concurrent change; partial results are never used.
func retryDump[T any](dump func() (T, error)) (T, error) {
	var (
		out T
		err error
	)
	for range dumpAttempts {
		out, err = dump()
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			return out, err
		}
	}
	return out, err
}

// checkIfName rejects names the kernel would refuse, with a message that
// says what is allowed. kind is "bridge", "veth" and so on.
func checkIfName(kind, name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%s name is empty", kind)
	case len(name) > maxIfNameLen:
		return fmt.Errorf("%s name %q is %d bytes long; Linux allows at most %d", kind, name, len(name), maxIfNameLen)
	case name == "." || name == ".." || strings.ContainsAny(name, "/: \t\n\x00"):
		return fmt.Errorf("%s name %q is not a valid interface name (no '/', ':' or spaces)", kind, name)
	}
	return nil
}

// ipNet converts an IPv4 address/prefix length to netlink's form, keeping
// the host bits (it is an interface address, not a route).
func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: net.IP(p.Addr().AsSlice()), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// prefixOf converts a netlink address back to an address/prefix length.
func prefixOf(n *net.IPNet) netip.Prefix {
	if n == nil {
		return netip.Prefix{}
	}
	ip, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}
	}
	ones, _ := n.Mask.Size()
	return netip.PrefixFrom(ip.Unmap(), ones)
}
