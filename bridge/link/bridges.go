package link

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"slices"

	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// ipv4DevconfRouteLocalnet is IPV4_DEVCONF_ROUTE_LOCALNET of <linux/ip.h>:
// the index of net.ipv4.conf.<dev>.route_localnet in IFLA_INET_CONF.
const ipv4DevconfRouteLocalnet = 26

// BridgeSpec is one bridge for CreateBridges: its name, its IPv4 address
// (gateway/prefix length) and MTU (0 keeps the kernel's default).
type BridgeSpec struct {
	Name string
	Addr netip.Prefix
	MTU  int
}

// BridgeError says which bridge of a CreateBridges call failed. Err names
// the bridge already.
type BridgeError struct {
	Bridge string
	Err    error
}

func (e *BridgeError) Error() string { return e.Err.Error() }
func (e *BridgeError) Unwrap() error { return e.Err }

// CreateBridges creates bridges that do not exist yet and leaves each as
// EnsureBridge and EnableRouteLocalnet would: IPv6 off, up, with its
// address as its only IPv4 address, its MTU, and route_localnet=1. It is
// for a restore of many networks: the requests are pipelined on one netlink
// socket in three rounds (create down, one link dump for the indexes,
// address and route_localnet and up) instead of seven round trips and a
// /proc write per bridge; between the first two rounds IPv6 is disabled on
// each, which has to happen before it is up. A bridge that
// someone else created meanwhile (EEXIST) is adopted with EnsureBridge and
// not counted as created. If anything fails, every bridge this call created
// is deleted again and the error is a *BridgeError naming the first bridge,
// in specs' order, that failed. It returns the names it created.
func (m *Manager) CreateBridges(specs []BridgeSpec) ([]string, error) {
	for _, s := range specs {
		if err := checkBridgeSpec(s); err != nil {
			return nil, &BridgeError{Bridge: s.Name, Err: err}
		}
	}
	if len(specs) == 0 {
		return nil, nil
	}
	c, err := m.rtConn()
	if err != nil {
		return nil, err
	}
	defer c.Close()
	created, adopt, err := createBridgeLinks(c, specs)
	if err == nil {
		if name, ipv6Err := disableIPv6(m.ns, specNames(created)...); ipv6Err != nil {
			err = &BridgeError{Bridge: name, Err: ipv6Err}
		}
	}
	if err == nil {
		err = configureNewBridges(c, created)
	}
	if err != nil {
		return nil, errors.Join(err, deleteNewBridges(c, created))
	}
	for _, s := range adopt {
		if err := m.EnsureBridge(s.Name, s.Addr, s.MTU); err != nil {
			return specNames(created), &BridgeError{Bridge: s.Name, Err: err}
		}
		if err := m.EnableRouteLocalnet(s.Name); err != nil {
			return specNames(created), &BridgeError{Bridge: s.Name, Err: err}
		}
	}
	return specNames(created), nil
}

// checkBridgeSpec refuses what EnsureBridge refuses, with its words.
func checkBridgeSpec(s BridgeSpec) error {
	if err := checkIfName("bridge", s.Name); err != nil {
		return err
	}
	if !s.Addr.IsValid() || !s.Addr.Addr().Is4() {
		return fmt.Errorf("bridge %q: address %s is not an IPv4 address/prefix length such as 172.18.0.1/16", s.Name, s.Addr)
	}
	if s.MTU < 0 {
		return fmt.Errorf("bridge %q: MTU %d is negative", s.Name, s.MTU)
	}
	return nil
}

// createBridgeLinks creates every bridge, up. It returns those it created
// and those that existed already; any other refusal is an error, after
// which created still lists what has to be deleted.
func createBridgeLinks(c *rtConn, specs []BridgeSpec) (created, exist []BridgeSpec, err error) {
	reqs := make([]*nl.NetlinkRequest, len(specs))
	for i, s := range specs {
		reqs[i] = newBridgeRequest(s)
	}
	answers, err := c.exchange(reqs)
	if err != nil {
		return nil, nil, err
	}
	var first error
	for i, s := range specs {
		switch {
		case answers[i] == nil:
			created = append(created, s)
		case errors.Is(answers[i], unix.EEXIST):
			exist = append(exist, s)
		case first == nil:
			first = &BridgeError{Bridge: s.Name, Err: fmt.Errorf("create bridge %q: %w", s.Name, answers[i])}
		}
	}
	return created, exist, first
}

// newBridgeRequest is what netlink.LinkAdd sends for a bridge with
// NewLinkAttrs: the bridge is down until setLinkRequest.
func newBridgeRequest(s BridgeSpec) *nl.NetlinkRequest {
	req := nl.NewNetlinkRequest(unix.RTM_NEWLINK, unix.NLM_F_CREATE|unix.NLM_F_EXCL|unix.NLM_F_ACK)
	req.AddData(nl.NewIfInfomsg(unix.AF_UNSPEC))
	req.AddData(nl.NewRtAttr(unix.IFLA_IFNAME, nl.ZeroTerminated(s.Name)))
	if s.MTU > 0 {
		req.AddData(nl.NewRtAttr(unix.IFLA_MTU, nl.Uint32Attr(uint32(s.MTU))))
	}
	info := nl.NewRtAttr(unix.IFLA_LINKINFO, nil)
	info.AddRtAttr(nl.IFLA_INFO_KIND, nl.NonZeroTerminated("bridge"))
	info.AddRtAttr(nl.IFLA_INFO_DATA, nil)
	req.AddData(info)
	return req
}

// configureNewBridges gives each new bridge its address, route_localnet=1
// and, if the kernel did not take it at creation, its MTU, and sets it up.
func configureNewBridges(c *rtConn, created []BridgeSpec) error {
	dump, err := c.dumpLinks()
	if err != nil {
		return err
	}
	links := make(map[string]linkRecord, len(dump))
	for _, l := range dump {
		links[l.name] = l
	}
	reqs := make([]*nl.NetlinkRequest, 0, 2*len(created))
	for _, s := range created {
		l, ok := links[s.Name]
		if !ok {
			return &BridgeError{Bridge: s.Name, Err: fmt.Errorf("bridge %q vanished right after it was created", s.Name)}
		}
		reqs = append(reqs, newAddrRequest(l.index, s.Addr), setLinkRequest(l, s.MTU))
	}
	answers, err := c.exchange(reqs)
	if err != nil {
		return err
	}
	for i, s := range created {
		if err := answers[2*i]; err != nil {
			return &BridgeError{Bridge: s.Name, Err: fmt.Errorf("configure bridge %q: add address %s: %w", s.Name, s.Addr, err)}
		}
		if err := answers[2*i+1]; err != nil {
			return &BridgeError{Bridge: s.Name, Err: fmt.Errorf("set route_localnet=1 and up on bridge %q: %w", s.Name, err)}
		}
	}
	return nil
}

// newAddrRequest is what netlink.AddrAdd sends for an IPv4 address: local,
// address and, below /31, the broadcast address.
func newAddrRequest(index int32, addr netip.Prefix) *nl.NetlinkRequest {
	req := nl.NewNetlinkRequest(unix.RTM_NEWADDR, unix.NLM_F_CREATE|unix.NLM_F_EXCL|unix.NLM_F_ACK)
	msg := nl.NewIfAddrmsg(unix.AF_INET)
	msg.Index, msg.Prefixlen = uint32(index), uint8(addr.Bits())
	req.AddData(msg)
	local := addr.Addr().AsSlice()
	req.AddData(nl.NewRtAttr(unix.IFA_LOCAL, local))
	req.AddData(nl.NewRtAttr(unix.IFA_ADDRESS, local))
	if addr.Bits() < 31 {
		host := ^uint32(0) >> addr.Bits()
		broadcast := binary.BigEndian.AppendUint32(nil, binary.BigEndian.Uint32(local)|host)
		req.AddData(nl.NewRtAttr(unix.IFA_BROADCAST, broadcast))
	}
	return req
}

// setLinkRequest sets route_localnet=1 through IFLA_AF_SPEC, as writing
// the sysctl does, the MTU if the new bridge does not have it yet, and
// IFF_UP.
func setLinkRequest(l linkRecord, mtu int) *nl.NetlinkRequest {
	req := nl.NewNetlinkRequest(unix.RTM_NEWLINK, unix.NLM_F_ACK)
	msg := nl.NewIfInfomsg(unix.AF_UNSPEC)
	msg.Index = l.index
	msg.Flags, msg.Change = unix.IFF_UP, unix.IFF_UP
	req.AddData(msg)
	if mtu > 0 && l.mtu != uint32(mtu) {
		req.AddData(nl.NewRtAttr(unix.IFLA_MTU, nl.Uint32Attr(uint32(mtu))))
	}
	spec := nl.NewRtAttr(unix.IFLA_AF_SPEC, nil)
	inet := spec.AddRtAttr(unix.AF_INET, nil)
	conf := inet.AddRtAttr(unix.IFLA_INET_CONF, nil)
	conf.AddRtAttr(ipv4DevconfRouteLocalnet, nl.Uint32Attr(1))
	req.AddData(spec)
	return req
}

// deleteNewBridges undoes createBridgeLinks, by name.
func deleteNewBridges(c *rtConn, created []BridgeSpec) error {
	reqs := make([]*nl.NetlinkRequest, len(created))
	for i, s := range created {
		req := nl.NewNetlinkRequest(unix.RTM_DELLINK, unix.NLM_F_ACK)
		req.AddData(nl.NewIfInfomsg(unix.AF_UNSPEC))
		req.AddData(nl.NewRtAttr(unix.IFLA_IFNAME, nl.ZeroTerminated(s.Name)))
		reqs[i] = req
	}
	answers, err := c.exchange(reqs)
	if err != nil {
		return err
	}
	var errs []error
	for i, s := range created {
		if err := answers[i]; err != nil && !errors.Is(err, unix.ENODEV) {
			errs = append(errs, fmt.Errorf("delete bridge %q: %w", s.Name, err))
		}
	}
	return errors.Join(errs...)
}

func specNames(specs []BridgeSpec) []string {
	names := make([]string, len(specs))
	for i, s := range specs {
		names[i] = s.Name
	}
	return slices.Clip(names)
}
