package bench

import (
	"slices"
	"time"

	"github.com/nftbridge/nftbridge/bridge"
)

// Results is everything one run measured; results.json holds it as is.
type Results struct {
	Started, Finished time.Time
	Machine           Machine
	Config            Config
	Data              []DataSeries
	Control           []ControlSeries
	Memory            []MemoryResult
	RuleCounts        []RuleCount
	// Rounds are the back-to-back rounds after the regular runs.
	Rounds []Round `json:",omitempty"`
	Notes  []string
}

// Round is RoundLayouts measured one right after another at (N, P):
// Values[layout][metric].
type Round struct {
	N, P   int
	Values map[string]map[string]float64
}

// pairedRatios is every ratio layout a / layout b of a metric at (n, p)
// whose two figures were taken side by side: one per regular run (the
// layouts are rotated, not reordered, so the two stay a few layouts
// apart), then one per back-to-back round.
func (r *Results) pairedRatios(n, p int, metric, a, b string) []float64 {
	var out []float64
	if sa, sb := r.Find(n, p, a, metric), r.Find(n, p, b, metric); sa != nil && sb != nil {
		out = pairwise(sa.Samples, sb.Samples)
	}
	for _, round := range r.Rounds {
		if round.N != n || round.P != p {
			continue
		}
		if va, vb := round.Values[a][metric], round.Values[b][metric]; va > 0 && vb > 0 {
			out = append(out, va/vb)
		}
	}
	return out
}

// pairwise is a[i] / b[i] for every repetition i both have (b[i] > 0).
func pairwise(a, b []float64) []float64 {
	var out []float64
	for i := range min(len(a), len(b)) {
		if b[i] > 0 {
			out = append(out, a[i]/b[i])
		}
	}
	return out
}

// DataSeries is the repeated measurements of one metric for one layout at
// one (N, P).
type DataSeries struct {
	N, P    int
	Layout  string
	Metric  string
	Samples []float64
}

// ControlSeries is repeated timings of one control-plane operation: Kind
// "publish" (X = ports already published), "network" (X = networks) or
// "restore" (X = ports, at RestoreN networks), by Method.
type ControlSeries struct {
	Kind      string
	X         int
	Method    string
	SamplesMS []float64
	MaxRSSKB  []int64 `json:",omitempty"`
}

// MemoryResult is one memory figure.
type MemoryResult struct {
	What   string
	RSSKB  int64
	PeakKB int64
	Note   string
}

// RuleCount is the size of each layout at a point.
type RuleCount struct {
	N, P           int
	DockerRules    int
	NftbridgeRules int
	NftbridgeElems int
}

// Control-plane kinds.
const (
	KindPublish = "publish"
	KindNetwork = "network"
	KindRestore = "restore"
)

func (r *Results) addData(n, p int, layout string, vals map[string]float64) {
	for metric, v := range vals {
		s := r.series(n, p, layout, metric)
		s.Samples = append(s.Samples, v)
	}
}

func (r *Results) series(n, p int, layout, metric string) *DataSeries {
	for i := range r.Data {
		d := &r.Data[i]
		if d.N == n && d.P == p && d.Layout == layout && d.Metric == metric {
			return d
		}
	}
	r.Data = append(r.Data, DataSeries{N: n, P: p, Layout: layout, Metric: metric})
	return &r.Data[len(r.Data)-1]
}

// Find returns the series for (n, p, layout, metric), or nil.
func (r *Results) Find(n, p int, layout, metric string) *DataSeries {
	for i := range r.Data {
		d := &r.Data[i]
		if d.N == n && d.P == p && d.Layout == layout && d.Metric == metric {
			return d
		}
	}
	return nil
}

func (r *Results) addControl(kind string, x int, method string, ms float64, rssKB int64) {
	for i := range r.Control {
		c := &r.Control[i]
		if c.Kind == kind && c.X == x && c.Method == method {
			c.SamplesMS = append(c.SamplesMS, ms)
			if rssKB > 0 {
				c.MaxRSSKB = append(c.MaxRSSKB, rssKB)
			}
			return
		}
	}
	c := ControlSeries{Kind: kind, X: x, Method: method, SamplesMS: []float64{ms}}
	if rssKB > 0 {
		c.MaxRSSKB = []int64{rssKB}
	}
	r.Control = append(r.Control, c)
}

// FindControl returns a control-plane series, or nil.
func (r *Results) FindControl(kind string, x int, method string) *ControlSeries {
	for i := range r.Control {
		c := &r.Control[i]
		if c.Kind == kind && c.X == x && c.Method == method {
			return c
		}
	}
	return nil
}

func (r *Results) addRuleCount(pt *Point) {
	rc := RuleCount{N: pt.N, P: pt.P, DockerRules: DockerRuleCount(pt.Plan)}
	if rs, err := bridge.Compile(PlanState(pt.Plan, RealContainer{})); err == nil {
		for _, c := range rs.Chains {
			rc.NftbridgeRules += len(c.Rules)
		}
		for _, s := range rs.Sets {
			rc.NftbridgeElems += len(s.Elements)
		}
	}
	r.RuleCounts = append(r.RuleCounts, rc)
}

// Median of xs (0 for none).
func Median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// Quantile of xs at q in [0, 1], interpolating between neighbours.
func Quantile(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	pos := q * float64(len(s)-1)
	i := int(pos)
	if i+1 >= len(s) {
		return s[len(s)-1]
	}
	return s[i] + (pos-float64(i))*(s[i+1]-s[i])
}

// Spread is (max − min) / median: the relative range of the samples.
func Spread(xs []float64) float64 {
	m := Median(xs)
	if m == 0 {
		return 0
	}
	return (slices.Max(xs) - slices.Min(xs)) / m
}
