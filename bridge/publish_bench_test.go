package bridge

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/nftbridge/nftbridge/bridge/store"
	"github.com/nftbridge/nftbridge/nft"
	"github.com/nftbridge/nftbridge/ports"
)

// nopFirewall accepts everything: the benchmark measures the engine's own
// cost (store and compile), not the kernel's.
type nopFirewall struct{}

func (nopFirewall) Reconcile(*nft.Ruleset) error   { return nil }
func (nopFirewall) Update(_, _ *nft.Ruleset) error { return nil }
func (nopFirewall) TableExists() (bool, error)     { return true, nil }

// seedState writes 1,000 networks and p endpoints with one port each.
func seedState(b *testing.B, path string, p int) {
	s, err := store.Open(path, time.Minute)
	if err != nil {
		b.Fatal(err)
	}
	err = s.Update(func(st *store.State) error {
		for i := range 1000 {
			name := fmt.Sprintf("n%d", i)
			base := netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), 0})
			st.Networks[name] = &store.Network{Name: name, ID: fmt.Sprintf("%064d", i), Bridge: fmt.Sprintf("br%d", i),
				Subnet: netip.PrefixFrom(base, 24), Gateway: base.Next(), ICC: true, Masquerade: true}
		}
		for j := range p {
			i := j % 1000
			name := fmt.Sprintf("e%d", j)
			st.Endpoints[name] = &store.Endpoint{Name: name, ID: fmt.Sprintf("%064d", j), Network: fmt.Sprintf("n%d", i),
				Addr:  netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), byte(2 + j/1000)}),
				Ports: []store.Port{{Proto: "tcp", HostIP: netip.IPv4Unspecified(), HostPort: uint16(10000 + j), ContainerPort: 80}}}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
}

// BenchmarkPublish: publishing one more port costs the same at 10 and at
// 10,000 published ports (the engine reads one endpoint and the port index).
func BenchmarkPublish(b *testing.B) {
	for _, p := range []int{10, 10000} {
		b.Run(fmt.Sprintf("P=%d", p), func(b *testing.B) {
			path := b.TempDir() + "/state.db"
			seedState(b, path, p)
			eng, err := New(Config{StorePath: path, Firewall: nopFirewall{}, Links: newFakeLinks(), Host: fakeHost{}})
			if err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for i := range b.N {
				spec := ports.Spec{HostPorts: ports.SinglePort(uint16(30000 + i%20000)), ContainerPorts: ports.SinglePort(81)}
				if _, err := eng.Publish("e1", []ports.Spec{spec}); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				if _, err := eng.Unpublish("e1", []ports.Spec{spec}); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
		})
	}
}
