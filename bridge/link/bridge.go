package link

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// EnsureBridge creates the Linux bridge name, or adopts an existing one, and
// leaves it up with exactly one IPv4 address, addr (gateway/prefix length),
// IPv6 off (see disableIPv6) and the given MTU (0 keeps the kernel's
// default or the current value). It
// is idempotent. Other IPv4 addresses on the bridge are removed. If it
// created the bridge and a later step fails, the bridge is deleted again.
func (m *Manager) EnsureBridge(name string, addr netip.Prefix, mtu int) error {
	if err := checkIfName("bridge", name); err != nil {
		return err
	}
	if !addr.IsValid() || !addr.Addr().Is4() {
		return fmt.Errorf("bridge %q: address %s is not an IPv4 address/prefix length such as 172.18.0.1/16", name, addr)
	}
	if mtu < 0 {
		return fmt.Errorf("bridge %q: MTU %d is negative", name, mtu)
	}
	h, err := m.handle()
	if err != nil {
		return err
	}
	defer h.Close()
	br, created, err := ensureBridgeLink(h, name, mtu)
	if err != nil {
		return err
	}
	if _, err := disableIPv6(m.ns, name); err != nil {
		if created {
			err = errors.Join(err, deleteLink(h, br, "bridge"))
		}
		return fmt.Errorf("configure bridge %q: %w", name, err)
	}
	if err := configureBridge(h, br, addr, mtu); err != nil {
		if created {
			err = errors.Join(err, deleteLink(h, br, "bridge"))
		}
		return fmt.Errorf("configure bridge %q: %w", name, err)
	}
	return nil
}

// ensureBridgeLink returns the bridge name, creating it if it is missing.
func ensureBridgeLink(h *netlink.Handle, name string, mtu int) (netlink.Link, bool, error) {
	existing, err := lookupBridge(h, name)
	if err != nil || existing != nil {
		return existing, false, err
	}
	attrs := netlink.NewLinkAttrs() // not a zero LinkAttrs: that would set txqueuelen 0
	attrs.Name, attrs.MTU = name, mtu
	err = h.LinkAdd(&netlink.Bridge{LinkAttrs: attrs})
	if errors.Is(err, unix.EEXIST) {
		// Created by someone else since we looked: adopt it.
		existing, err = lookupBridge(h, name)
		return existing, false, err
	}
	if err != nil {
		return nil, false, fmt.Errorf("create bridge %q: %w", name, err)
	}
	br, err := linkByName(h, name)
	if err != nil {
		return nil, false, fmt.Errorf("look up new bridge %q: %w", name, err)
	}
	if br == nil {
		return nil, false, fmt.Errorf("bridge %q vanished right after it was created", name)
	}
	return br, true, nil
}

// lookupBridge returns the bridge, nil if there is no link called name, and
// an error if name is a link of another kind.
func lookupBridge(h *netlink.Handle, name string) (netlink.Link, error) {
	l, err := linkByName(h, name)
	if err != nil {
		return nil, fmt.Errorf("look up bridge %q: %w", name, err)
	}
	if l != nil && l.Type() != "bridge" {
		return nil, fmt.Errorf("link %q exists and is a %s, not a bridge", name, l.Type())
	}
	return l, nil
}

func configureBridge(h *netlink.Handle, br netlink.Link, addr netip.Prefix, mtu int) error {
	if mtu > 0 && br.Attrs().MTU != mtu {
		if err := h.LinkSetMTU(br, mtu); err != nil {
			return fmt.Errorf("set MTU %d: %w", mtu, err)
		}
	}
	if err := setOnlyAddr(h, br, addr); err != nil {
		return err
	}
	if err := h.LinkSetUp(br); err != nil {
		return fmt.Errorf("set up: %w", err)
	}
	return nil
}

// setOnlyAddr makes addr the link's only IPv4 address. IPv6 addresses (the
// kernel's link-local one) are left alone.
func setOnlyAddr(h *netlink.Handle, l netlink.Link, addr netip.Prefix) error {
	current, err := retryDump(func() ([]netlink.Addr, error) { return h.AddrList(l, netlink.FAMILY_V4) })
	if err != nil {
		return fmt.Errorf("list addresses: %w", err)
	}
	have := false
	for _, a := range current {
		if prefixOf(a.IPNet) == addr {
			have = true
			continue
		}
		if err := h.AddrDel(l, &a); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
			// EADDRNOTAVAIL: already gone with a deleted primary.
			return fmt.Errorf("remove address %s: %w", prefixOf(a.IPNet), err)
		}
	}
	if have {
		return nil
	}
	if err := h.AddrAdd(l, &netlink.Addr{IPNet: ipNet(addr)}); err != nil {
		return fmt.Errorf("add address %s: %w", addr, err)
	}
	return nil
}

// DeleteBridge deletes the bridge name. A missing bridge is not an error; a
// link of another kind with that name is, and is left alone.
func (m *Manager) DeleteBridge(name string) error {
	h, err := m.handle()
	if err != nil {
		return err
	}
	defer h.Close()
	br, err := lookupBridge(h, name)
	if err != nil || br == nil {
		return err
	}
	return deleteLink(h, br, "bridge")
}

// BridgeExists reports whether a bridge called name exists. A link of
// another kind with that name is an error.
func (m *Manager) BridgeExists(name string) (bool, error) {
	h, err := m.handle()
	if err != nil {
		return false, err
	}
	defer h.Close()
	br, err := lookupBridge(h, name)
	return br != nil, err
}

// deleteLink deletes l; a link that vanished meanwhile is not an error.
func deleteLink(h *netlink.Handle, l netlink.Link, kind string) error {
	err := h.LinkDel(l)
	if err == nil || errors.Is(err, unix.ENODEV) || IsNotFound(err) {
		return nil
	}
	return fmt.Errorf("delete %s %q: %w", kind, l.Attrs().Name, err)
}
