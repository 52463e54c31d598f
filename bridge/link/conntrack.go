package link

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// FlushConntrack deletes the conntrack entries of connections DNATed to a
// published port that is going away: protocol proto, original destination
// port hostPort, answered by containerAddr. Without this a live UDP flow
// (or a TCP connection) keeps being translated after unpublish, as Docker's
// bridge driver also knows (it clears them the same way).
func (m *Manager) FlushConntrack(proto uint8, hostPort uint16, containerAddr netip.Addr) (uint, error) {
	h, err := m.handle(unix.NETLINK_NETFILTER)
	if err != nil {
		return 0, err
	}
	defer h.Close()
	f := &netlink.ConntrackFilter{}
	if err := f.AddProtocol(proto); err != nil {
		return 0, err
	}
	if err := f.AddPort(netlink.ConntrackOrigDstPort, hostPort); err != nil {
		return 0, err
	}
	if err := f.AddIP(netlink.ConntrackReplySrcIP, net.IP(containerAddr.AsSlice())); err != nil {
		return 0, err
	}
	n, err := h.ConntrackDeleteFilters(netlink.ConntrackTable, unix.AF_INET, f)
	if err != nil {
		return n, fmt.Errorf("flush conntrack for %d/%d to %s: %w", hostPort, proto, containerAddr, err)
	}
	return n, nil
}

// ForgetAddress deletes the conntrack entries of every connection from or
// to addr: sent by it (original source), or answered by it (reply source,
// DNATed or not). Removing an endpoint calls it, as Docker's bridge driver
// clears an endpoint's connections, so that no connection outlives the
// endpoint that allowed it: the forward chain accepts later packets of a
// connection without deciding again, and the address may come back on an
// endpoint that publishes nothing, or on an internal network.
func (m *Manager) ForgetAddress(addr netip.Addr) (uint, error) {
	h, err := m.handle(unix.NETLINK_NETFILTER)
	if err != nil {
		return 0, err
	}
	defer h.Close()
	from, to := &netlink.ConntrackFilter{}, &netlink.ConntrackFilter{}
	if err := from.AddIP(netlink.ConntrackOrigSrcIP, net.IP(addr.AsSlice())); err != nil {
		return 0, err
	}
	if err := to.AddIP(netlink.ConntrackReplySrcIP, net.IP(addr.AsSlice())); err != nil {
		return 0, err
	}
	n, err := h.ConntrackDeleteFilters(netlink.ConntrackTable, unix.AF_INET, from, to)
	if err != nil {
		return n, fmt.Errorf("flush conntrack from and to %s: %w", addr, err)
	}
	return n, nil
}
