package bench

import (
	"fmt"
	"slices"
)

// Target is one of the goals with what this run measured.
type Target struct {
	Goal     string
	Want     string
	Measured string
	Status   string // PASS, MISS, or "not measured"
	Shortage string // on MISS: by how much
}

// Targets evaluates the goals on a run's results. The "large"
// point is the largest N and P measured, the "small" one the smallest.
func Targets(r *Results) []Target {
	var out []Target
	if len(r.Config.Networks) > 0 && len(r.Config.Ports) > 0 {
		out = append(out, dataTargets(r)...)
	}
	out = append(out, publishTargets(r)...)
	return append(out, restoreTargets(r)...)
}

func (r *Results) median(n, p int, layout, metric string) (float64, bool) {
	s := r.Find(n, p, layout, metric)
	if s == nil || len(s.Samples) == 0 {
		return 0, false
	}
	return Median(s.Samples), true
}

func dataTargets(r *Results) []Target {
	nBig, pBig := slices.Max(r.Config.Networks), slices.Max(r.Config.Ports)
	at := fmt.Sprintf("N=%d, P=%d", nBig, pBig)
	var out []Target
	for _, metric := range []string{MetricCRR, MetricUDPIn, MetricUDPOut} {
		title := metricTitle(metric)
		out = append(out,
			pairedTarget(r, metric, LayoutNftbridgeN1P1,
				fmt.Sprintf("%s at %s vs nftbridge holding N=1, P=1 on the same topology, side by side (flat)", title, at), 0.95),
			pairedTarget(r, metric, LayoutNone, fmt.Sprintf("%s at %s vs plain forwarding, side by side", title, at), 0.80),
			pairedTarget(r, metric, LayoutLegacy, fmt.Sprintf("%s at %s vs Docker's layout on iptables-legacy, side by side", title, at), 4))
	}
	return out
}

// Diagnostic is a figure the report shows beside the targets to explain
// them; it is not a goal of its own.
type Diagnostic struct {
	What     string
	Measured string
	Why      string
}

// Diagnostics are the data-plane figures that explain the targets: the
// flat target computed across points, and the price of stateful NAT
// itself (nat-floor) against that of nftbridge's rules.
func Diagnostics(r *Results) []Diagnostic {
	if len(r.Config.Networks) == 0 || len(r.Config.Ports) == 0 {
		return nil
	}
	nBig, pBig := slices.Max(r.Config.Networks), slices.Max(r.Config.Ports)
	nSmall, pSmall := slices.Min(r.Config.Networks), slices.Min(r.Config.Ports)
	var out []Diagnostic
	for _, metric := range []string{MetricCRR, MetricUDPIn, MetricUDPOut} {
		title := metricTitle(metric)
		big, ok1 := r.median(nBig, pBig, LayoutNftbridge, metric)
		small, ok2 := r.median(nSmall, pSmall, LayoutNftbridge, metric)
		noneBig, ok3 := r.median(nBig, pBig, LayoutNone, metric)
		noneSmall, ok4 := r.median(nSmall, pSmall, LayoutNone, metric)
		if ok1 && ok2 && ok3 && ok4 && noneBig > 0 && noneSmall > 0 && small > 0 && (nBig != nSmall || pBig != pSmall) {
			out = append(out, Diagnostic{
				What: fmt.Sprintf("%s: nftbridge at N=%d, P=%d vs at N=%d, P=%d, each over plain forwarding at its point",
					title, nBig, pBig, nSmall, pSmall),
				Measured: fmt.Sprintf("%.2f× (%s/%s vs %s/%s)", big/noneBig/(small/noneSmall),
					rate(big), rate(noneBig), rate(small), rate(noneSmall)),
				Why: "the flat target across points, measured minutes apart on different topologies; the target compares side by side",
			})
		}
		for _, pair := range [][2]string{{LayoutFloor, LayoutNone}, {LayoutNftbridge, LayoutFloor}} {
			ratios := r.pairedRatios(nBig, pBig, metric, pair[0], pair[1])
			if len(ratios) == 0 {
				continue
			}
			why := "the price of stateful NAT itself (conntrack, DNAT, masquerade) before any filtering rule"
			if pair[0] == LayoutNftbridge {
				why = "the price of nftbridge's own rules on top of stateful NAT"
			}
			out = append(out, Diagnostic{
				What:     fmt.Sprintf("%s at N=%d, P=%d: %s / %s, side by side", title, nBig, pBig, pair[0], pair[1]),
				Measured: fmt.Sprintf("%.2f× (median of %d paired ratios)", Median(ratios), len(ratios)),
				Why:      why,
			})
		}
	}
	return out
}

// pairedTarget wants the median of the paired ratios nftbridge / other at
// the largest point ≥ min.
func pairedTarget(r *Results, metric, other, goal string, min float64) Target {
	n, p := slices.Max(r.Config.Networks), slices.Max(r.Config.Ports)
	ratios := r.pairedRatios(n, p, metric, LayoutNftbridge, other)
	t := ratioTarget(goal, Median(ratios), 1, len(ratios) > 0, min)
	if t.Status != "not measured" {
		mine, _ := r.median(n, p, LayoutNftbridge, metric)
		theirs, _ := r.median(n, p, other, metric)
		t.Measured = fmt.Sprintf("%s (median of %d paired ratios; medians %s vs %s)",
			ratioText(Median(ratios), min), len(ratios), rate(mine), rate(theirs))
	}
	return t
}

// ratioTarget wants a/b ≥ min.
func ratioTarget(goal string, a, b float64, ok bool, min float64) Target {
	t := Target{Goal: goal, Want: fmt.Sprintf("≥ %.2f×", min), Status: "not measured"}
	if !ok || b == 0 {
		return t
	}
	ratio := a / b
	t.Measured = fmt.Sprintf("%s (%s vs %s)", ratioText(ratio, min), rate(a), rate(b))
	t.Status = passMiss(ratio >= min)
	if ratio < min {
		t.Shortage = fmt.Sprintf("%.1f%% below the target ratio", 100*(1-ratio/min))
	}
	return t
}

// ratioText prints a ratio with two decimals, or three where two would
// round a miss up to the target (0.949 is not 0.95).
func ratioText(ratio, target float64) string {
	two := fmt.Sprintf("%.2f×", ratio)
	if ratio < target && two == fmt.Sprintf("%.2f×", target) {
		return fmt.Sprintf("%.3f×", ratio)
	}
	return two
}

func passMiss(ok bool) string {
	if ok {
		return "PASS"
	}
	return "MISS"
}

func (r *Results) controlMedian(kind string, x int, method string) (float64, bool) {
	s := r.FindControl(kind, x, method)
	if s == nil || len(s.SamplesMS) == 0 {
		return 0, false
	}
	return Median(s.SamplesMS), true
}

func publishTargets(r *Results) []Target {
	if len(r.Config.PublishPorts) == 0 {
		return nil
	}
	pBig, pSmall := slices.Max(r.Config.PublishPorts), slices.Min(r.Config.PublishPorts)
	var out []Target
	for _, method := range []string{MethodCLI, MethodLib} {
		big, ok1 := r.controlMedian(KindPublish, pBig, method)
		small, ok2 := r.controlMedian(KindPublish, pSmall, method)
		t := Target{Goal: fmt.Sprintf("publish one port (%s) at P=%d vs at P=%d", method, pBig, pSmall),
			Want: "≤ 1.20×", Status: "not measured"}
		if ok1 && ok2 && small > 0 {
			ratio := big / small
			t.Measured = fmt.Sprintf("%.2f× (%s vs %s)", ratio, ms(big), ms(small))
			t.Status = passMiss(ratio <= 1.2)
			if ratio > 1.2 {
				t.Shortage = fmt.Sprintf("%.0f%% over the allowed ratio", 100*(ratio/1.2-1))
			}
		}
		out = append(out, t)
	}
	out = append(out, limitTarget(fmt.Sprintf("publish one port through the CLI at P=%d (median)", pBig),
		r, KindPublish, pBig, MethodCLI, 10))
	return out
}

// limitTarget wants the median under limitMS.
func limitTarget(goal string, r *Results, kind string, x int, method string, limitMS float64) Target {
	t := Target{Goal: goal, Want: "< " + ms(limitMS), Status: "not measured"}
	if v, ok := r.controlMedian(kind, x, method); ok {
		t.Measured = ms(v)
		t.Status = passMiss(v < limitMS)
		if v >= limitMS {
			t.Shortage = fmt.Sprintf("%.0f%% over", 100*(v/limitMS-1))
		}
	}
	return t
}

// pairedControl is every ratio a / b of two control-plane methods timed in
// the same repetition.
func (r *Results) pairedControl(kind string, x int, a, b string) []float64 {
	sa, sb := r.FindControl(kind, x, a), r.FindControl(kind, x, b)
	if sa == nil || sb == nil {
		return nil
	}
	return pairwise(sa.SamplesMS, sb.SamplesMS)
}

func restoreTargets(r *Results) []Target {
	p, n := r.Config.RestoreP, r.Config.RestoreN
	at := fmt.Sprintf("N=%d, P=%d", n, p)
	cold := limitTarget("full `nftbridge restore` at "+at+" creating every bridge", r, KindRestore, p, MethodColdRest, 500)
	if floor, ok := r.controlMedian(KindRestore, p, MethodBridgesIP); ok && cold.Shortage != "" {
		cold.Shortage += fmt.Sprintf("; the same bridges alone (ip and sysctl, no ruleset) took %s", ms(floor))
	}
	out := []Target{
		limitTarget("full `nftbridge restore` at "+at+" (bridges present, table flushed)", r, KindRestore, p, MethodRestore, 500),
		cold,
	}
	mine, okMine := r.controlMedian(KindRestore, p, MethodRestore)
	for _, other := range []string{MethodLegacyRest, MethodNftRest} {
		theirs, ok := r.controlMedian(KindRestore, p, other)
		t := Target{Goal: "restore at " + at + " faster than " + other + ", side by side", Want: "faster", Status: "not measured"}
		// Each repetition times both, one right after the other: the
		// median of those ratios is what drift cannot tilt.
		ratios := r.pairedControl(KindRestore, p, MethodRestore, other)
		if ok && okMine && len(ratios) > 0 {
			paired := Median(ratios)
			t.Measured = fmt.Sprintf("%.2f× the time (median of %d paired ratios; medians %s vs %s)", paired, len(ratios), ms(mine), ms(theirs))
			t.Status = passMiss(paired < 1)
			if paired >= 1 {
				t.Shortage = fmt.Sprintf("%.2f× slower", paired)
			}
		}
		out = append(out, t)
	}
	t := Target{Goal: "peak RSS of `nftbridge restore` at " + at, Want: "< 100 MiB", Status: "not measured"}
	var peak int64
	for _, m := range []string{MethodRestore, MethodColdRest} {
		if s := r.FindControl(KindRestore, p, m); s != nil && len(s.MaxRSSKB) > 0 {
			peak = max(peak, slices.Max(s.MaxRSSKB))
		}
	}
	if peak > 0 {
		t.Measured = fmt.Sprintf("%.1f MiB (largest of all restores)", float64(peak)/1024)
		t.Status = passMiss(peak < 100*1024)
	}
	return append(out, t)
}
