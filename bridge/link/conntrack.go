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
