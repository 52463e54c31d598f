package bench

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
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
	// Then the CPUs must be idle: busy under settleIdleBusy in
	// settleIdleWindows windows of settleIdleWindow in a row. Work left
	// over from a teardown (or a stray process) would otherwise take a
	// core from whatever is timed next, and a restore that uses both
	// cores loses more to it than a single-threaded iptables-restore.
	settleIdleWindow  = 500 * time.Millisecond
	settleIdleBusy    = 0.10
	settleIdleWindows = 3
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
	rtnlFree := time.Since(start)
	for idle := 0; idle < settleIdleWindows; {
		if ctx.Err() != nil {
			return
		}
		if time.Since(start) > settleMax {
			b.logf("after %s: the CPUs were still busy after %s; going on", after, settleMax)
			return
		}
		busy, err := cpuBusy(settleIdleWindow)
		if err != nil {
			b.logf("after %s: reading CPU time: %v; going on", after, err)
			return
		}
		if busy < settleIdleBusy {
			idle++
		} else {
			idle = 0
		}
	}
	b.logf("after %s: the kernel settled in %s (rtnl free after %s)", after,
		time.Since(start).Round(time.Millisecond), rtnlFree.Round(time.Millisecond))
}

// cpuBusy is the share of CPU time, all CPUs together, that was neither
// idle nor waiting for I/O during d, from /proc/stat.
func cpuBusy(d time.Duration) (float64, error) {
	before, err := cpuTimes()
	if err != nil {
		return 0, err
	}
	time.Sleep(d)
	after, err := cpuTimes()
	if err != nil {
		return 0, err
	}
	total, idle := after[0]-before[0], after[1]-before[1]
	if total == 0 {
		return 0, nil
	}
	return float64(total-idle) / float64(total), nil
}

// cpuTimes returns the total and the idle+iowait ticks of /proc/stat's
// "cpu" line.
func cpuTimes() ([2]uint64, error) {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return [2]uint64{}, err
	}
	line, _, _ := strings.Cut(string(data), "\n")
	fields := strings.Fields(line)
	if len(fields) < 6 || fields[0] != "cpu" {
		return [2]uint64{}, fmt.Errorf("/proc/stat: unexpected first line %q", line)
	}
	var out [2]uint64
	// user nice system idle iowait irq softirq steal; guest time is
	// counted in user and nice already.
	for i, f := range fields[1:min(len(fields), 9)] {
		v, err := strconv.ParseUint(f, 10, 64)
		if err != nil {
			return [2]uint64{}, fmt.Errorf("/proc/stat: %q: %w", line, err)
		}
		out[0] += v
		if i == 3 || i == 4 { // idle, iowait
			out[1] += v
		}
	}
	return out, nil
}
