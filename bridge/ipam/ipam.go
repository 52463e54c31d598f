// Package ipam picks subnets for bridge networks and addresses for endpoints.
//
// It is pure: callers pass in what is already in use (read from the state
// store) and get back a choice or an error that names the offending value.
// Only IPv4 is supported.
package ipam

import (
	"errors"
	"fmt"
	"net/netip"
)

// Pool is a range of address space that is carved into subnets of one size.
type Pool struct {
	// Base is the range to carve, e.g. 192.168.0.0/16.
	Base netip.Prefix
	// Size is the prefix length of each subnet handed out, e.g. 20.
	Size int
}

// String renders the pool as "base/size", e.g. "192.168.0.0/16 as /20s".
func (p Pool) String() string {
	return fmt.Sprintf("%s as /%ds", p.Base, p.Size)
}

// DefaultPools returns Docker's default local address pools, in Docker's
// order: 172.17.0.0/16 … 172.31.0.0/16 as /16s, then 192.168.0.0/16 as /20s.
// A fresh slice is returned on every call so callers may modify it.
func DefaultPools() []Pool {
	return []Pool{
		{Base: netip.MustParsePrefix("172.17.0.0/16"), Size: 16},
		{Base: netip.MustParsePrefix("172.18.0.0/15"), Size: 16},
		{Base: netip.MustParsePrefix("172.20.0.0/14"), Size: 16},
		{Base: netip.MustParsePrefix("172.24.0.0/14"), Size: 16},
		{Base: netip.MustParsePrefix("172.28.0.0/14"), Size: 16},
		{Base: netip.MustParsePrefix("192.168.0.0/16"), Size: 20},
	}
}

// exhaustedError reports that a pool set or a subnet has nothing left to give.
type exhaustedError struct{ msg string }

func (e *exhaustedError) Error() string { return e.msg }

// IsExhausted reports whether err (or an error it wraps) says that no subnet
// is left in the pools (NextSubnet) or no address is left in a subnet
// (AllocateAddr).
func IsExhausted(err error) bool {
	var e *exhaustedError
	return errors.As(err, &e)
}

// NextSubnet returns the first subnet, walking the pools in order, that
// overlaps none of the used prefixes.
func NextSubnet(pools []Pool, used []netip.Prefix) (netip.Prefix, error) {
	for _, pool := range pools {
		if err := validatePool(pool); err != nil {
			return netip.Prefix{}, err
		}
		if subnet, ok := firstFree(pool, used); ok {
			return subnet, nil
		}
	}
	return netip.Prefix{}, &exhaustedError{fmt.Sprintf("no free subnet left in address pools %v", pools)}
}

func validatePool(pool Pool) error {
	base := pool.Base
	switch {
	case !base.IsValid() || !base.Addr().Is4():
		return fmt.Errorf("address pool %v: base must be an IPv4 prefix", pool)
	case base != base.Masked():
		return fmt.Errorf("address pool %v: base has host bits set, did you mean %s?", pool, base.Masked())
	case pool.Size < base.Bits() || pool.Size > 30:
		return fmt.Errorf("address pool %v: size must be between /%d and /30", pool, base.Bits())
	}
	return nil
}

// firstFree walks the pool's subnets in address order. When a candidate
// collides with a used prefix it jumps past the end of whichever is larger,
// so a big used block costs one step, not one per candidate inside it.
func firstFree(pool Pool, used []netip.Prefix) (netip.Prefix, bool) {
	step := uint64(1) << (32 - pool.Size)
	start := uint64(toUint32(pool.Base.Addr()))
	end := start + uint64(1)<<(32-pool.Base.Bits()) // exclusive
	for cur := start; cur < end; {
		candidate := netip.PrefixFrom(fromUint32(uint32(cur)), pool.Size)
		blocker, overlapping := firstOverlap(candidate, used)
		if !overlapping {
			return candidate, true
		}
		next := cur + step
		if blockerEnd := lastAddr(blocker.Masked()) + 1; blockerEnd > next {
			// Round up to the next candidate boundary after the blocker.
			next = start + (blockerEnd-start+step-1)/step*step
		}
		cur = next
	}
	return netip.Prefix{}, false
}

func firstOverlap(p netip.Prefix, used []netip.Prefix) (netip.Prefix, bool) {
	for _, u := range used {
		if Overlaps(p, u) {
			return u, true
		}
	}
	return netip.Prefix{}, false
}

// Overlaps reports whether two prefixes share any address. Invalid prefixes
// overlap nothing; host bits are ignored.
func Overlaps(a, b netip.Prefix) bool {
	if !a.IsValid() || !b.IsValid() {
		return false
	}
	return a.Masked().Overlaps(b.Masked())
}

// reservedRanges can never be a bridge subnet: the kernel treats them
// specially, so a bridge there would silently not work.
func reservedRanges() []netip.Prefix {
	return []netip.Prefix{
		netip.MustParsePrefix("0.0.0.0/8"),
		netip.MustParsePrefix("127.0.0.0/8"),
		netip.MustParsePrefix("224.0.0.0/4"),
		netip.MustParsePrefix("240.0.0.0/4"),
	}
}

// ValidateSubnet checks a subnet given by an operator: IPv4, no host bits
// set, prefix length /8 to /30, clear of reserved ranges and of every used
// prefix. Errors name the bad value and what would be valid.
func ValidateSubnet(subnet netip.Prefix, used []netip.Prefix) error {
	if !subnet.IsValid() {
		return errors.New("invalid subnet: want an IPv4 CIDR such as 172.18.0.0/16")
	}
	if !subnet.Addr().Is4() {
		return fmt.Errorf("subnet %s: IPv6 is not supported yet, use an IPv4 subnet", subnet)
	}
	if subnet != subnet.Masked() {
		return fmt.Errorf("subnet %s has host bits set, did you mean %s?", subnet, subnet.Masked())
	}
	if bits := subnet.Bits(); bits < 8 || bits > 30 {
		return fmt.Errorf("subnet %s: prefix length /%d is out of range, must be /8 to /30", subnet, bits)
	}
	for _, reserved := range reservedRanges() {
		if Overlaps(subnet, reserved) {
			return fmt.Errorf("subnet %s overlaps reserved range %s", subnet, reserved)
		}
	}
	if u, ok := firstOverlap(subnet, used); ok {
		return fmt.Errorf("subnet %s overlaps %s, which is already in use", subnet, u)
	}
	return nil
}

// DefaultGateway returns the first host address of subnet, Docker's choice.
func DefaultGateway(subnet netip.Prefix) netip.Addr {
	return subnet.Masked().Addr().Next()
}

// ValidateGateway checks that gw is a host address inside subnet: not the
// network or broadcast address.
func ValidateGateway(subnet netip.Prefix, gw netip.Addr) error {
	if err := checkSubnet(subnet); err != nil {
		return err
	}
	if err := checkHostAddr(subnet, gw); err != nil {
		return fmt.Errorf("gateway %w", err)
	}
	return nil
}

// checkSubnet is the minimum AllocateAddr and ValidateGateway need.
func checkSubnet(subnet netip.Prefix) error {
	if !subnet.IsValid() || !subnet.Addr().Is4() || subnet.Bits() > 30 {
		return fmt.Errorf("subnet %s: want an IPv4 subnet of /30 or larger", subnet)
	}
	return nil
}

// checkHostAddr says why addr is not a usable host address of subnet. The
// message starts with the address so callers can prefix "gateway ".
func checkHostAddr(subnet netip.Prefix, addr netip.Addr) error {
	subnet = subnet.Masked()
	switch {
	case !addr.IsValid():
		return errors.New("address is not set")
	case !subnet.Contains(addr):
		return fmt.Errorf("%s is outside subnet %s", addr, subnet)
	case addr == subnet.Addr():
		return fmt.Errorf("%s is the network address of %s", addr, subnet)
	case toUint32(addr) == uint32(lastAddr(subnet)):
		return fmt.Errorf("%s is the broadcast address of %s", addr, subnet)
	}
	return nil
}

// AllocateAddr picks an endpoint address in subnet. If want is set it is
// returned when usable (inside subnet, not network, broadcast or gateway, not
// in use) and an error naming it otherwise. If want is the zero Addr the
// lowest free host address is returned. A subnet with nothing free gives an
// error for which IsExhausted is true.
func AllocateAddr(subnet netip.Prefix, gateway netip.Addr, used []netip.Addr, want netip.Addr) (netip.Addr, error) {
	if err := checkSubnet(subnet); err != nil {
		return netip.Addr{}, err
	}
	subnet = subnet.Masked()
	taken := make(map[netip.Addr]struct{}, len(used)+1)
	for _, a := range used {
		taken[a.Unmap()] = struct{}{}
	}
	if want.IsValid() {
		want = want.Unmap()
		if err := checkHostAddr(subnet, want); err != nil {
			return netip.Addr{}, fmt.Errorf("address %w", err)
		}
		if want == gateway.Unmap() {
			return netip.Addr{}, fmt.Errorf("address %s is the gateway of %s", want, subnet)
		}
		if _, inUse := taken[want]; inUse {
			return netip.Addr{}, fmt.Errorf("address %s is already in use in %s", want, subnet)
		}
		return want, nil
	}
	taken[gateway.Unmap()] = struct{}{}
	first := toUint32(subnet.Addr()) + 1
	last := uint32(lastAddr(subnet)) - 1
	for n := first; n <= last; n++ {
		candidate := fromUint32(n)
		if _, inUse := taken[candidate]; !inUse {
			return candidate, nil
		}
	}
	return netip.Addr{}, &exhaustedError{fmt.Sprintf("subnet %s is full", subnet)}
}

// lastAddr is the highest address of an IPv4 prefix (its broadcast address),
// as a uint64 so that callers can add one without overflow.
func lastAddr(p netip.Prefix) uint64 {
	return uint64(toUint32(p.Masked().Addr())) + uint64(1)<<(32-p.Bits()) - 1
}

func toUint32(a netip.Addr) uint32 {
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

func fromUint32(n uint32) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)})
}
