package ipam

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
)

func prefixes(ss ...string) []netip.Prefix {
	out := make([]netip.Prefix, 0, len(ss))
	for _, s := range ss {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}

func addrs(ss ...string) []netip.Addr {
	out := make([]netip.Addr, 0, len(ss))
	for _, s := range ss {
		out = append(out, netip.MustParseAddr(s))
	}
	return out
}

func TestDefaultPoolsEnumeration(t *testing.T) {
	var used []netip.Prefix
	var got []string
	for {
		subnet, err := NextSubnet(DefaultPools(), used)
		if err != nil {
			if !IsExhausted(err) {
				t.Fatalf("NextSubnet: %v, want an exhausted error", err)
			}
			break
		}
		got = append(got, subnet.String())
		used = append(used, subnet)
	}
	var want []string
	for i := 17; i <= 31; i++ {
		want = append(want, fmt.Sprintf("172.%d.0.0/16", i))
	}
	for i := 0; i < 256; i += 16 {
		want = append(want, fmt.Sprintf("192.168.%d.0/20", i))
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("default pools gave\n%v\nwant\n%v", got, want)
	}
}

func TestNextSubnet(t *testing.T) {
	tests := []struct {
		name    string
		pools   []Pool
		used    []netip.Prefix
		want    string
		wantErr string
	}{
		{name: "empty", pools: DefaultPools(), want: "172.17.0.0/16"},
		{name: "first used", pools: DefaultPools(), used: prefixes("172.17.0.0/16"), want: "172.18.0.0/16"},
		{name: "small used inside first", pools: DefaultPools(), used: prefixes("172.17.5.0/24"), want: "172.18.0.0/16"},
		{name: "big used covers many", pools: DefaultPools(), used: prefixes("172.16.0.0/12"), want: "192.168.0.0/20"},
		{name: "unmasked used", pools: DefaultPools(), used: prefixes("172.17.9.9/16"), want: "172.18.0.0/16"},
		{name: "hole after used", pools: DefaultPools(), used: prefixes("172.17.0.0/16", "172.19.0.0/16"), want: "172.18.0.0/16"},
		{name: "ipv6 used ignored", pools: DefaultPools(), used: prefixes("fd00::/8"), want: "172.17.0.0/16"},
		{
			name:  "large pool skips big blocker",
			pools: []Pool{{Base: netip.MustParsePrefix("10.0.0.0/8"), Size: 24}},
			used:  prefixes("10.0.0.0/9", "10.128.0.0/24"),
			want:  "10.128.1.0/24",
		},
		{
			name:    "exhausted",
			pools:   []Pool{{Base: netip.MustParsePrefix("10.1.0.0/23"), Size: 24}},
			used:    prefixes("10.1.0.0/24", "10.1.1.0/24"),
			wantErr: "no free subnet left",
		},
		{
			name:    "bad pool size",
			pools:   []Pool{{Base: netip.MustParsePrefix("10.1.0.0/16"), Size: 8}},
			wantErr: "size must be between /16 and /30",
		},
		{
			name:    "unmasked pool",
			pools:   []Pool{{Base: netip.MustParsePrefix("10.1.2.0/16"), Size: 24}},
			wantErr: "did you mean 10.1.0.0/16",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := NextSubnet(tc.pools, tc.used)
			checkErr(t, err, tc.wantErr)
			if tc.wantErr == "" && got.String() != tc.want {
				t.Fatalf("NextSubnet = %s, want %s", got, tc.want)
			}
		})
	}
}

func TestOverlaps(t *testing.T) {
	tests := []struct {
		a, b string
		want bool
	}{
		{"172.17.0.0/16", "172.17.3.0/24", true},
		{"172.17.3.0/24", "172.17.0.0/16", true},
		{"172.17.0.0/16", "172.18.0.0/16", false},
		{"10.0.0.0/8", "10.255.255.252/30", true},
		{"192.168.0.0/20", "192.168.16.0/20", false},
		{"172.17.0.5/16", "172.17.200.0/24", true},
	}
	for _, tc := range tests {
		a, b := netip.MustParsePrefix(tc.a), netip.MustParsePrefix(tc.b)
		if got := Overlaps(a, b); got != tc.want {
			t.Errorf("Overlaps(%s, %s) = %v, want %v", a, b, got, tc.want)
		}
	}
	if Overlaps(netip.Prefix{}, netip.MustParsePrefix("0.0.0.0/0")) {
		t.Errorf("an invalid prefix must overlap nothing")
	}
}

func TestValidateSubnet(t *testing.T) {
	used := prefixes("172.17.0.0/16", "192.168.16.0/20")
	tests := []struct {
		subnet  string
		wantErr string
	}{
		{"172.18.0.0/16", ""},
		{"10.0.0.0/8", ""},
		{"10.9.8.4/30", ""},
		{"172.18.0.5/16", "did you mean 172.18.0.0/16"},
		{"fd00::/64", "IPv6 is not supported"},
		{"10.0.0.0/7", "/7 is out of range, must be /8 to /30"},
		{"10.0.0.0/31", "/31 is out of range"},
		{"172.17.4.0/24", "overlaps 172.17.0.0/16, which is already in use"},
		{"192.168.0.0/16", "overlaps 192.168.16.0/20"},
		{"127.1.0.0/16", "overlaps reserved range 127.0.0.0/8"},
		{"224.1.0.0/16", "reserved range 224.0.0.0/4"},
	}
	for _, tc := range tests {
		t.Run(tc.subnet, func(t *testing.T) {
			checkErr(t, ValidateSubnet(netip.MustParsePrefix(tc.subnet), used), tc.wantErr)
		})
	}
	checkErr(t, ValidateSubnet(netip.Prefix{}, nil), "invalid subnet")
}

func TestGateway(t *testing.T) {
	subnet := netip.MustParsePrefix("172.18.0.0/16")
	if got := DefaultGateway(subnet); got != netip.MustParseAddr("172.18.0.1") {
		t.Fatalf("DefaultGateway = %s", got)
	}
	tests := []struct {
		subnet, gw string
		wantErr    string
	}{
		{"172.18.0.0/16", "172.18.0.1", ""},
		{"172.18.0.0/16", "172.18.255.254", ""},
		{"172.18.0.0/16", "172.18.0.0", "gateway 172.18.0.0 is the network address of 172.18.0.0/16"},
		{"172.18.0.0/16", "172.18.255.255", "broadcast address"},
		{"172.18.0.0/16", "172.19.0.1", "gateway 172.19.0.1 is outside subnet 172.18.0.0/16"},
		{"10.0.0.0/30", "10.0.0.2", ""},
		{"10.0.0.0/30", "10.0.0.3", "broadcast"},
	}
	for _, tc := range tests {
		t.Run(tc.subnet+"_"+tc.gw, func(t *testing.T) {
			err := ValidateGateway(netip.MustParsePrefix(tc.subnet), netip.MustParseAddr(tc.gw))
			checkErr(t, err, tc.wantErr)
		})
	}
	checkErr(t, ValidateGateway(subnet, netip.Addr{}), "gateway address is not set")
}

func TestAllocateAddr(t *testing.T) {
	gw := netip.MustParseAddr("172.18.0.1")
	tests := []struct {
		name    string
		subnet  string
		gw      netip.Addr
		used    []netip.Addr
		want    string // requested address, "" for any
		result  string
		wantErr string
	}{
		{name: "first", subnet: "172.18.0.0/16", gw: gw, result: "172.18.0.2"},
		{name: "skips used", subnet: "172.18.0.0/16", gw: gw, used: addrs("172.18.0.2", "172.18.0.3"), result: "172.18.0.4"},
		{name: "fills hole", subnet: "172.18.0.0/16", gw: gw, used: addrs("172.18.0.3"), result: "172.18.0.2"},
		{name: "gateway not first", subnet: "10.0.0.0/24", gw: netip.MustParseAddr("10.0.0.254"), result: "10.0.0.1"},
		{name: "want ok", subnet: "172.18.0.0/16", gw: gw, want: "172.18.3.4", result: "172.18.3.4"},
		{name: "want used", subnet: "172.18.0.0/16", gw: gw, used: addrs("172.18.3.4"), want: "172.18.3.4", wantErr: "address 172.18.3.4 is already in use"},
		{name: "want gateway", subnet: "172.18.0.0/16", gw: gw, want: "172.18.0.1", wantErr: "address 172.18.0.1 is the gateway"},
		{name: "want outside", subnet: "172.18.0.0/16", gw: gw, want: "172.19.0.2", wantErr: "address 172.19.0.2 is outside subnet"},
		{name: "want network", subnet: "172.18.0.0/16", gw: gw, want: "172.18.0.0", wantErr: "network address"},
		{name: "want broadcast", subnet: "172.18.0.0/16", gw: gw, want: "172.18.255.255", wantErr: "broadcast address"},
		{name: "slash30 last", subnet: "10.0.0.0/30", gw: netip.MustParseAddr("10.0.0.1"), result: "10.0.0.2"},
		{
			name: "full", subnet: "10.0.0.0/30", gw: netip.MustParseAddr("10.0.0.1"),
			used: addrs("10.0.0.2"), wantErr: "subnet 10.0.0.0/30 is full",
		},
		{name: "ipv6 subnet", subnet: "fd00::/64", wantErr: "want an IPv4 subnet"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var want netip.Addr
			if tc.want != "" {
				want = netip.MustParseAddr(tc.want)
			}
			got, err := AllocateAddr(netip.MustParsePrefix(tc.subnet), tc.gw, tc.used, want)
			checkErr(t, err, tc.wantErr)
			if tc.wantErr == "" && got.String() != tc.result {
				t.Fatalf("AllocateAddr = %s, want %s", got, tc.result)
			}
		})
	}
}

func TestAllocateAddrFullIsExhausted(t *testing.T) {
	_, err := AllocateAddr(netip.MustParsePrefix("10.0.0.0/30"), netip.MustParseAddr("10.0.0.1"), addrs("10.0.0.2"), netip.Addr{})
	if !IsExhausted(err) {
		t.Fatalf("IsExhausted(%v) = false", err)
	}
}

// TestAllocateAddrLargeSubnet fills most of a /16: allocation must stay fast
// (map lookups, not a scan of used per candidate).
func TestAllocateAddrLargeSubnet(t *testing.T) {
	subnet := netip.MustParsePrefix("172.20.0.0/16")
	gw := DefaultGateway(subnet)
	var used []netip.Addr
	for a := gw.Next(); len(used) < 5000; a = a.Next() {
		used = append(used, a)
	}
	for i := 0; i < 200; i++ {
		got, err := AllocateAddr(subnet, gw, used, netip.Addr{})
		if err != nil {
			t.Fatalf("AllocateAddr: %v", err)
		}
		if want := used[len(used)-1].Next(); got != want {
			t.Fatalf("AllocateAddr = %s, want %s", got, want)
		}
		used = append(used, got)
	}
}

func checkErr(t *testing.T, err error, want string) {
	t.Helper()
	switch {
	case want == "" && err != nil:
		t.Fatalf("unexpected error: %v", err)
	case want != "" && err == nil:
		t.Fatalf("got no error, want one containing %q", want)
	case want != "" && !strings.Contains(err.Error(), want):
		t.Fatalf("error %q does not contain %q", err, want)
	}
}
