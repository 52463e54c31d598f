package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"
)

// Metric names, in report order.
const (
	MetricCRR    = "tcp_conn_per_s" // new connections (connect, 1 B each way, close)
	MetricRR     = "tcp_rr_per_s"   // transactions on established connections
	MetricUDPIn  = "udp_in_pps"     // outside → container, through the published port
	MetricUDPOut = "udp_out_pps"    // container → outside (masqueraded)
)

// Metrics is every data-plane metric, in report order.
func Metrics() []string { return []string{MetricCRR, MetricRR, MetricUDPIn, MetricUDPOut} }

// loadArgs are the load generators' common flags.
func (b *Bench) loadArgs(addr string, conc int) []string {
	return []string{"-addr", addr, "-conc", strconv.Itoa(conc),
		"-warmup", b.cfg.Warmup.String(), "-dur", b.cfg.Duration.String()}
}

// measureAll takes every metric once for a loaded layout, or only those
// asked for.
func (b *Bench) measureAll(ctx context.Context, st *Stack, t Dest, metrics ...string) (map[string]float64, error) {
	if len(metrics) == 0 {
		metrics = Metrics()
	}
	out := map[string]float64{}
	for _, m := range metrics {
		var v float64
		var err error
		switch m {
		case MetricCRR:
			v, err = b.tcpRate(st, "crr", t.TCP, b.cfg.TCPConc)
		case MetricRR:
			v, err = b.tcpRate(st, "rr", t.TCP, b.cfg.TCPConc)
		case MetricUDPIn:
			v, err = b.udpRate(ctx, st.Outside, st.Container, t.UDP, ServerUDPPort)
		case MetricUDPOut:
			v, err = b.udpRate(ctx, st.Container, st.Outside, t.Out, OutsideUDPPort)
		default:
			err = fmt.Errorf("unknown metric %q", m)
		}
		if err != nil {
			return nil, err
		}
		out[m] = v
	}
	return out, nil
}

// tcpRate runs the crr or rr client from the outside namespace.
func (b *Bench) tcpRate(st *Stack, role, addr string, conc int) (float64, error) {
	out, err := b.sb.RunRole(st.Outside, role, b.loadArgs(addr, conc)...)
	if err != nil {
		return 0, err
	}
	var res LoadResult
	if err := json.Unmarshal(out, &res); err != nil {
		return 0, fmt.Errorf("%s output %q: %w", role, out, err)
	}
	// A few failures (a SYN lost to a full queue) are load; many mean the
	// path is broken and the rate would be meaningless.
	if res.Errors > res.Ops/100+10 {
		return 0, fmt.Errorf("%s to %s: %d errors for %d successes", role, addr, res.Errors, res.Ops)
	}
	return res.Rate(), nil
}

// udpRate sends from one namespace to a sink in another and returns the
// datagrams per second the sink received during the sender's window.
func (b *Bench) udpRate(ctx context.Context, fromNS, toNS, addr string, port int) (float64, error) {
	sink, err := b.sb.StartRole(ctx, toNS, "udpsink", "-port", strconv.Itoa(port))
	if err != nil {
		return 0, err
	}
	out, sendErr := b.sb.RunRole(fromNS, "udp", b.loadArgs(addr, b.cfg.UDPConc)...)
	sinkOut, sinkErr := sink.Finish(10 * time.Second)
	if sendErr != nil {
		return 0, sendErr
	}
	if sinkErr != nil {
		return 0, fmt.Errorf("udp sink: %w", sinkErr)
	}
	var sent LoadResult
	var got SinkResult
	if err := json.Unmarshal(out, &sent); err != nil {
		return 0, fmt.Errorf("udp sender output %q: %w", out, err)
	}
	if err := json.Unmarshal(sinkOut, &got); err != nil {
		return 0, fmt.Errorf("udp sink output: %w", err)
	}
	received := countBetween(got.Samples, sent.Start, sent.End)
	if received == 0 {
		return 0, fmt.Errorf("udp to %s: nothing arrived (%d sent)", addr, sent.Ops)
	}
	rate := received / (float64(sent.End-sent.Start) / 1e9)
	if b.cfg.Verbose {
		b.logf("  udp to %s: sent %.0f/s, received %.0f/s", addr, sent.Rate(), rate)
	}
	return rate, nil
}

// countBetween interpolates the running total at t0 and t1.
func countBetween(samples [][2]int64, t0, t1 int64) float64 {
	return totalAt(samples, t1) - totalAt(samples, t0)
}

func totalAt(samples [][2]int64, t int64) float64 {
	if len(samples) == 0 {
		return 0
	}
	if t <= samples[0][0] {
		return float64(samples[0][1])
	}
	for i := 1; i < len(samples); i++ {
		a, b := samples[i-1], samples[i]
		if t <= b[0] {
			frac := float64(t-a[0]) / float64(b[0]-a[0])
			return float64(a[1]) + frac*float64(b[1]-a[1])
		}
	}
	return float64(samples[len(samples)-1][1])
}
