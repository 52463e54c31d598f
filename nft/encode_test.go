package nft

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// TestElementsRoundTrip: every set of a compiled ruleset decodes back from
// its encoding to the same elements (pure: no kernel).
func TestElementsRoundTrip(t *testing.T) {
	rs := mustCompile(t, applyTestDesired(4, 3, 2))
	for _, s := range rs.Sets {
		kes, err := encodeElements(s, s.Elements)
		if err != nil {
			t.Fatalf("encode %s: %v", s.Name, err)
		}
		got, err := decodeElements(s, kes)
		if err != nil {
			t.Fatalf("decode %s: %v", s.Name, err)
		}
		back := &Set{Name: s.Name, Key: s.Key, Data: s.Data, Interval: s.Interval, Elements: got}
		if !slices.Equal(modelElementStrings(back), modelElementStrings(s)) {
			t.Errorf("%s: %v became %v", s.Name, modelElementStrings(s), modelElementStrings(back))
		}
	}
}

// TestIntervalEncoding: a prefix is a start and an exclusive end; a range
// reaching 255.255.255.255 has no end and is marked open, as nft marks it.
func TestIntervalEncoding(t *testing.T) {
	set := &Set{Name: "s", Key: []Datatype{TypeIPv4Addr}, Interval: true}
	cases := []struct {
		prefix string
		want   []nftables.SetElement
	}{
		{"172.18.0.0/16", []nftables.SetElement{{Key: []byte{172, 18, 0, 0}}, {Key: []byte{172, 19, 0, 0}, IntervalEnd: true}}},
		{"10.0.0.1/32", []nftables.SetElement{{Key: []byte{10, 0, 0, 1}}, {Key: []byte{10, 0, 0, 2}, IntervalEnd: true}}},
		{"0.0.0.0/0", []nftables.SetElement{{Key: []byte{0, 0, 0, 0}, IntervalOpen: true}}},
		{"240.0.0.0/4", []nftables.SetElement{{Key: []byte{240, 0, 0, 0}, IntervalOpen: true}}},
	}
	for _, c := range cases {
		e := Element{Key: []Value{PrefixValue(netip.MustParsePrefix(c.prefix))}}
		got, err := encodeElements(set, []Element{e})
		if err != nil {
			t.Fatalf("%s: %v", c.prefix, err)
		}
		if !slices.EqualFunc(got, c.want, func(a, b nftables.SetElement) bool {
			return string(a.Key) == string(b.Key) && a.IntervalEnd == b.IntervalEnd && a.IntervalOpen == b.IntervalOpen
		}) {
			t.Errorf("%s: encoded %+v, want %+v", c.prefix, got, c.want)
		}
	}
	// Adjacent ranges share a key (one's end, the next's start), listed in
	// any order, and nft's leading end element at 0.0.0.0 is no range.
	kernel := []nftables.SetElement{
		{Key: []byte{172, 18, 0, 0}, IntervalEnd: true}, {Key: []byte{172, 18, 0, 0}},
		{Key: []byte{0, 0, 0, 0}, IntervalEnd: true}, {Key: []byte{172, 19, 0, 0}, IntervalEnd: true},
		{Key: []byte{172, 17, 0, 0}}, {Key: []byte{224, 0, 0, 0}, IntervalOpen: true},
	}
	got, err := decodeElements(set, kernel)
	if err != nil {
		t.Fatal(err)
	}
	set.Elements = got
	if want := []string{"172.17.0.0/16", "172.18.0.0/16", "224.0.0.0/3"}; !slices.Equal(modelElementStrings(set), want) {
		t.Errorf("decoded %v, want %v", modelElementStrings(set), want)
	}
}

// TestConcatenationEncoding: fields are padded to 4 bytes, addresses and
// ports in network order, interface names NUL-padded to 16 bytes; a
// concatenated range key carries its end.
func TestConcatenationEncoding(t *testing.T) {
	dnat := &Set{Name: MapPortDNAT, Key: []Datatype{TypeInetProto, TypeIPv4Addr, TypeInetService},
		Data: []Datatype{TypeIPv4Addr, TypeInetService}, Interval: true}
	e := Element{Key: []Value{ProtoValue(ProtoTCP), PrefixValue(netip.MustParsePrefix("0.0.0.0/0")), PortValue(8080)},
		Data: []Value{AddrValue(netip.MustParseAddr("172.18.0.2")), PortValue(80)}}
	got, err := encodeElements(dnat, []Element{e})
	if err != nil || len(got) != 1 {
		t.Fatalf("encode: %v, %d elements", err, len(got))
	}
	want := nftables.SetElement{
		Key:    []byte{6, 0, 0, 0, 0, 0, 0, 0, 0x1f, 0x90, 0, 0},
		KeyEnd: []byte{6, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x1f, 0x90, 0, 0},
		Val:    []byte{172, 18, 0, 2, 0, 80, 0, 0},
	}
	if string(got[0].Key) != string(want.Key) || string(got[0].KeyEnd) != string(want.KeyEnd) || string(got[0].Val) != string(want.Val) {
		t.Errorf("encoded %x - %x : %x\nwant    %x - %x : %x", got[0].Key, got[0].KeyEnd, got[0].Val, want.Key, want.KeyEnd, want.Val)
	}
	homes := &Set{Key: []Datatype{TypeIPv4Addr, TypeIfname}}
	got, err = encodeElements(homes, []Element{{Key: []Value{AddrValue(netip.MustParseAddr("10.0.0.2")), IfnameValue("br-a")}}})
	if wantKey := append([]byte{10, 0, 0, 2, 'b', 'r', '-', 'a'}, make([]byte, 12)...); err != nil || string(got[0].Key) != string(wantKey) {
		t.Errorf("ipv4 . ifname: %x, %v; want %x", got[0].Key, err, wantKey)
	}
	if _, err := encodeElements(homes, []Element{{Key: []Value{AddrValue(netip.MustParseAddr("10.0.0.2")), IfnameValue("sixteen-chars-xx")}}}); err == nil {
		t.Error("a 16-byte interface name was accepted")
	}
}

// TestVerdictDecoding reads verdicts the way google/nftables hands them
// back: raw NFTA_VERDICT_* attributes.
func TestVerdictDecoding(t *testing.T) {
	raw, err := netlink.MarshalAttributes([]netlink.Attribute{
		{Type: unix.NFTA_VERDICT_CODE, Data: binaryutil.BigEndian.PutUint32(uint32(0xfffffffd))}, // NFT_JUMP
		{Type: unix.NFTA_VERDICT_CHAIN, Data: []byte("user\x00")},
	})
	if err != nil {
		t.Fatal(err)
	}
	v, err := decodeVerdict(nftables.SetElement{Val: raw})
	if err != nil || *v != (Verdict{Kind: Jump, Chain: "user"}) {
		t.Errorf("decoded %+v, %v; want jump user", v, err)
	}
}

// TestRegisters: nft's register numbering, 128-bit aliases where a field
// starts a 16-byte register.
func TestRegisters(t *testing.T) {
	for reg32, want := range map[uint32]uint32{8: 1, 9: 9, 10: 10, 12: 2, 13: 13, 16: 3, 20: 4} {
		if got := wireRegister(reg32); got != want {
			t.Errorf("wireRegister(%d) = %d, want %d", reg32, got, want)
		}
	}
}
