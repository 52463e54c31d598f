package nft

import (
	"fmt"
	"testing"
)

// BenchmarkUpdateOnePort measures one published port change (an Update of
// one DNAT map element and one published-set element) against maps of 10
// and 10,000 ports: the cost must not grow with the map. Iterations
// alternate adding and removing the port so the kernel state stays bounded.
func BenchmarkUpdateOnePort(b *testing.B) {
	for _, ports := range []int{10, 10000} {
		b.Run(fmt.Sprintf("P=%d", ports), func(b *testing.B) {
			ns := newTestNetNS(b)
			a := ns.applier(b)
			d := applyScaleDesired(100, ports)
			base := mustCompile(b, d)
			more := mustCompile(b, withOnePortMore(d))
			mustReconcile(b, a, base)
			b.ResetTimer()
			for i := range b.N {
				from, to := base, more
				if i%2 == 1 {
					from, to = more, base
				}
				if err := a.Update(from, to); err != nil {
					b.Fatalf("Update: %v", err)
				}
			}
		})
	}
}
