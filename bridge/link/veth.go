package link

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// defaultIfName is the container-side name when VethConfig.IfName is empty.
const defaultIfName = "eth0"

// VethConfig describes a veth pair connecting a container to a bridge.
type VethConfig struct {
	// Bridge is the bridge, in the Manager's namespace, the host end joins.
	Bridge string
	// HostName is the host end's name (at most 15 bytes), e.g. "nb" + 8 hex.
	HostName string
	// NetNS is the container's namespace (see OpenNetNS). Empty means Docker
	// driver mode: the peer stays in the Manager's namespace as PeerName,
	// down and unconfigured, for Docker to move and configure.
	NetNS string
	// PeerName is the peer's name in Docker driver mode (at most 15 bytes).
	// With NetNS set it is not used: the peer is created directly inside
	// the namespace as IfName, so no temporary host-side name ever exists.
	PeerName string
	// IfName is the peer's name inside NetNS; "eth0" when empty.
	IfName string
	// Addr is the container's address and prefix length (NetNS mode).
	Addr netip.Prefix
	// Gateway, if set, becomes the container's default route (NetNS mode).
	Gateway netip.Addr
	// MTU of both ends; 0 keeps the kernel default.
	MTU int
	// Hairpin turns on hairpin mode on the bridge port, so a container can
	// reach its own published port through the host.
	Hairpin bool
	// MAC, if set, is the peer's hardware address.
	MAC net.HardwareAddr
}

// validate checks cfg and fills in defaults.
func (cfg VethConfig) validate() (VethConfig, error) {
	if cfg.IfName == "" {
		cfg.IfName = defaultIfName
	}
	checks := []error{checkIfName("bridge", cfg.Bridge), checkIfName("host veth", cfg.HostName)}
	if cfg.NetNS == "" {
		checks = append(checks, checkIfName("veth peer", cfg.PeerName))
	} else {
		checks = append(checks, checkIfName("container interface", cfg.IfName))
		if !cfg.Addr.IsValid() || !cfg.Addr.Addr().Is4() {
			checks = append(checks, fmt.Errorf("container address %s is not an IPv4 address/prefix length such as 172.18.0.2/16", cfg.Addr))
		} else if cfg.Gateway.IsValid() && !cfg.Addr.Masked().Contains(cfg.Gateway) {
			checks = append(checks, fmt.Errorf("gateway %s is outside the container's subnet %s", cfg.Gateway, cfg.Addr.Masked()))
		} else if cfg.Gateway == cfg.Addr.Addr() {
			checks = append(checks, fmt.Errorf("gateway %s is the container's own address", cfg.Gateway))
		}
	}
	if cfg.MTU < 0 {
		checks = append(checks, fmt.Errorf("MTU %d is negative", cfg.MTU))
	}
	return cfg, errors.Join(checks...)
}

// CreateVeth creates a veth pair, attaches the host end to cfg.Bridge (with
// hairpin mode if asked) and sets it up. With cfg.NetNS set, the peer is
// created inside that namespace as cfg.IfName, given cfg.Addr, set up
// together with lo, and given a default route via cfg.Gateway. An existing
// cfg.IfName in the namespace, or cfg.HostName on the host, is an error
// naming it. On any failure everything CreateVeth created is removed.
func (m *Manager) CreateVeth(cfg VethConfig) error {
	cfg, err := cfg.validate()
	if err != nil {
		return fmt.Errorf("create veth %q: %w", cfg.HostName, err)
	}
	h, err := m.handle()
	if err != nil {
		return err
	}
	defer h.Close()
	if err := m.createVeth(h, cfg); err != nil {
		return fmt.Errorf("create veth %q: %w", cfg.HostName, err)
	}
	return nil
}

func (m *Manager) createVeth(h *netlink.Handle, cfg VethConfig) error {
	br, err := lookupBridge(h, cfg.Bridge)
	if err != nil {
		return err
	}
	if br == nil {
		return fmt.Errorf("bridge %q does not exist", cfg.Bridge)
	}
	if err := mustNotExist(h, cfg.HostName, "host"); err != nil {
		return err
	}
	attrs := netlink.NewLinkAttrs() // not a zero LinkAttrs: that would set txqueuelen 0
	attrs.Name, attrs.MTU = cfg.HostName, cfg.MTU
	veth := netlink.NewVeth(attrs)
	veth.PeerName, veth.PeerHardwareAddr = cfg.PeerName, cfg.MAC
	if cfg.NetNS == "" {
		if err := mustNotExist(h, cfg.PeerName, "host"); err != nil {
			return err
		}
		return m.addAndAttach(h, veth, br, cfg.Hairpin, func() error { return nil })
	}
	target, err := OpenNetNS(cfg.NetNS)
	if err != nil {
		return err
	}
	defer target.Close()
	th, err := netlink.NewHandleAt(target, unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("open netlink socket in namespace %q: %w", cfg.NetNS, err)
	}
	defer th.Close()
	if err := mustNotExist(th, cfg.IfName, fmt.Sprintf("namespace %q", cfg.NetNS)); err != nil {
		return err
	}
	veth.PeerName = cfg.IfName
	veth.PeerNamespace = netlink.NsFd(int(target))
	return m.addAndAttach(h, veth, br, cfg.Hairpin, func() error { return configurePeer(th, target, cfg) })
}

// addAndAttach creates the pair, then turns IPv6 off on the host end,
// attaches and raises it and runs configure; if any step after creation
// fails it deletes the pair (deleting one end removes both, wherever the
// peer is).
func (m *Manager) addAndAttach(h *netlink.Handle, veth *netlink.Veth, br netlink.Link, hairpin bool, configure func() error) error {
	if err := h.LinkAdd(veth); err != nil {
		return fmt.Errorf("add veth pair %q/%q: %w", veth.Name, veth.PeerName, err)
	}
	_, err := disableIPv6(m.ns, veth.Name)
	if err == nil {
		err = attach(h, veth.Name, br, hairpin)
	}
	if err == nil {
		err = configure()
	}
	if err != nil {
		if cleanupErr := deleteLink(h, veth, "veth"); cleanupErr != nil {
			return errors.Join(err, fmt.Errorf("clean up: %w", cleanupErr))
		}
		return err
	}
	return nil
}

// attach enslaves the host end to the bridge, sets hairpin mode and sets
// the host end up.
func attach(h *netlink.Handle, hostName string, br netlink.Link, hairpin bool) error {
	host, err := mustExist(h, hostName, "the host namespace")
	if err != nil {
		return err
	}
	if host.Attrs().MasterIndex != br.Attrs().Index {
		if err := h.LinkSetMaster(host, br); err != nil {
			return fmt.Errorf("attach %q to bridge %q: %w", hostName, br.Attrs().Name, err)
		}
	}
	if err := h.LinkSetHairpin(host, hairpin); err != nil {
		return fmt.Errorf("set hairpin=%v on %q: %w", hairpin, hostName, err)
	}
	if err := h.LinkSetUp(host); err != nil {
		return fmt.Errorf("set %q up: %w", hostName, err)
	}
	return nil
}

// configurePeer turns IPv6 off on the container end, gives it its address,
// sets it and lo up and adds the default route, all in the container
// namespace target, through th.
func configurePeer(th *netlink.Handle, target netns.NsHandle, cfg VethConfig) error {
	where := fmt.Sprintf("namespace %q", cfg.NetNS)
	peer, err := mustExist(th, cfg.IfName, where)
	if err != nil {
		return err
	}
	if _, err := disableIPv6(target, cfg.IfName); err != nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	if err := th.AddrAdd(peer, &netlink.Addr{IPNet: ipNet(cfg.Addr)}); err != nil {
		return fmt.Errorf("add address %s to %q: %w", cfg.Addr, cfg.IfName, err)
	}
	if err := th.LinkSetUp(peer); err != nil {
		return fmt.Errorf("set %q up: %w", cfg.IfName, err)
	}
	lo, err := mustExist(th, "lo", where)
	if err != nil {
		return err
	}
	if err := th.LinkSetUp(lo); err != nil {
		return fmt.Errorf("set lo up: %w", err)
	}
	if !cfg.Gateway.IsValid() {
		return nil
	}
	route := &netlink.Route{LinkIndex: peer.Attrs().Index, Gw: net.IP(cfg.Gateway.AsSlice())}
	if err := th.RouteAdd(route); err != nil {
		return fmt.Errorf("add default route via %s dev %q: %w", cfg.Gateway, cfg.IfName, err)
	}
	return nil
}

// mustExist returns the link, failing with its name and where if missing.
func mustExist(h *netlink.Handle, name, where string) (netlink.Link, error) {
	l, err := linkByName(h, name)
	if err != nil {
		return nil, fmt.Errorf("look up %q in %s: %w", name, where, err)
	}
	if l == nil {
		return nil, fmt.Errorf("interface %q does not exist in %s", name, where)
	}
	return l, nil
}

// mustNotExist fails, naming the interface and where, if name exists.
func mustNotExist(h *netlink.Handle, name, where string) error {
	l, err := linkByName(h, name)
	if err != nil {
		return fmt.Errorf("look up %q in %s: %w", name, where, err)
	}
	if l != nil {
		return fmt.Errorf("interface %q already exists in %s", name, where)
	}
	return nil
}

// AttachVeth attaches the existing host end hostName to bridge, sets its
// hairpin mode and sets it up. It is idempotent; restore uses it to re-plug
// veths into a recreated bridge.
func (m *Manager) AttachVeth(hostName, bridge string, hairpin bool) error {
	h, err := m.handle()
	if err != nil {
		return err
	}
	defer h.Close()
	br, err := lookupBridge(h, bridge)
	if err != nil {
		return err
	}
	if br == nil {
		return fmt.Errorf("attach veth %q: bridge %q does not exist", hostName, bridge)
	}
	return attach(h, hostName, br, hairpin)
}

// DeleteVeth deletes the veth pair whose host end is hostName; the peer goes
// with it, wherever it is. A missing veth is not an error; a link of another
// kind with that name is, and is left alone.
func (m *Manager) DeleteVeth(hostName string) error {
	h, err := m.handle()
	if err != nil {
		return err
	}
	defer h.Close()
	l, err := linkByName(h, hostName)
	if err != nil {
		return fmt.Errorf("look up veth %q: %w", hostName, err)
	}
	if l == nil {
		return nil
	}
	if l.Type() != "veth" {
		return fmt.Errorf("link %q is a %s, not a veth: not deleting it", hostName, l.Type())
	}
	return deleteLink(h, l, "veth")
}
