package bench

import (
	"context"
	"time"

	"github.com/vishvananda/netlink"
)

// Tearing down a deleted namespace is the kernel's work, done after `ip
// netns del` returns: for one holding 1,000 bridges it keeps the rtnl lock
// for many seconds (16.7 s measured here, during which `ip link show lo`
// blocked). Anything timed in that window that needs the lock (a restore's
// link dump, creating a bridge) waits for it, while iptables-legacy-restore,
// which does not, goes ahead: the comparison would be unfair and noisy.
const (
	settleProbeEvery = 100 * time.Millisecond
	settleQuick      = 20 * time.Millisecond // a free rtnl answers in well under a millisecond
	settleQuiet      = 5                     // quick answers in a row that count as settled
	settleMax        = 2 * time.Minute
)

// settle waits until the kernel has torn down the namespaces deleted so far:
// until the rtnl lock has answered quickly settleQuiet times in a row. It
// gives up (and says so) after settleMax.
func (b *Bench) settle(ctx context.Context, after string) {
	start := time.Now()
	quick := 0
	// The teardown runs from a work queue: give it time to start.
	time.Sleep(2 * settleProbeEvery)
	for quick < settleQuiet {
		if ctx.Err() != nil {
			return
		}
		if time.Since(start) > settleMax {
			b.logf("after %s: the kernel was still busy after %s; going on", after, settleMax)
			return
		}
		t := time.Now()
		if _, err := netlink.LinkByName("lo"); err != nil {
			b.logf("after %s: probing the rtnl lock: %v; going on", after, err)
			return
		}
		if time.Since(t) < settleQuick {
			quick++
		} else {
			quick = 0
		}
		time.Sleep(settleProbeEvery)
	}
	b.logf("after %s: the kernel settled in %s", after, time.Since(start).Round(time.Millisecond))
}
