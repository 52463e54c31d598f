package link

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/vishvananda/netns"
)

// ipv6ConfDir holds one directory per interface when the kernel has IPv6.
const ipv6ConfDir = "/proc/sys/net/ipv6/conf/"

// disableIPv6 sets net.ipv6.conf.<name>.disable_ipv6=1 for each of names in
// namespace ns (the caller's if ns is not open), as Docker does for its
// IPv4-only networks. nftbridge's networks are IPv4-only and its table is
// of family ip, so IPv6 over a bridge, a bridge port or a container
// interface would pass unfiltered: two containers on a network with ICC off
// could still talk over their link-local addresses. It also spares the
// kernel the link-local address, the multicast and prefix routes and the
// walk of the whole IPv6 routing tree that bringing up each interface
// costs otherwise. Call it before the interface is up. A kernel without
// IPv6 has nothing to disable. On failure it returns the interface too.
func disableIPv6(ns netns.NsHandle, names ...string) (failed string, err error) {
	if len(names) == 0 {
		return "", nil
	}
	err = inNamespace(ns, func() error {
		if _, err := os.Stat(ipv6ConfDir); errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		for _, name := range names {
			failed = name
			if err := checkIfName("interface", name); err != nil {
				return err
			}
			if err := os.WriteFile(ipv6ConfDir+name+"/disable_ipv6", []byte("1"), 0o644); err != nil {
				return fmt.Errorf("set sysctl net/ipv6/conf/%s/disable_ipv6=1: %w", name, err)
			}
		}
		return nil
	})
	if err != nil {
		return failed, err
	}
	return "", nil
}
