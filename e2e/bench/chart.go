package bench

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// Chart files under the output directory.
const (
	ChartConn      = "conn-per-s.png"
	ChartDataPlane = "dataplane.png"
	ChartPublish   = "publish-latency.png"
)

func metricTitle(metric string) string {
	switch metric {
	case MetricCRR:
		return "new TCP connections/s"
	case MetricRR:
		return "TCP transactions/s"
	case MetricUDPIn:
		return "UDP packets/s in"
	case MetricUDPOut:
		return "UDP packets/s out"
	}
	return metric
}

// writeCharts draws the data-plane rates against P (a panel per N, a line
// per layout) and the publish latency against P (a line per method).
func writeCharts(dir string, r *Results) error {
	if len(r.Data) > 0 {
		if err := dataPlaneChart(r, []string{MetricCRR}, filepath.Join(dir, ChartConn)); err != nil {
			return err
		}
		if err := dataPlaneChart(r, Metrics(), filepath.Join(dir, ChartDataPlane)); err != nil {
			return err
		}
	}
	return publishChart(r, filepath.Join(dir, ChartPublish))
}

func dataPlaneChart(r *Results, metrics []string, path string) error {
	ns := r.Config.Networks
	plots := make([][]*plot.Plot, len(metrics))
	for row, metric := range metrics {
		plots[row] = make([]*plot.Plot, len(ns))
		for col, n := range ns {
			p := logLogPlot(fmt.Sprintf("%s, N=%d", metricTitle(metric), n), "published ports P", metricTitle(metric))
			var all plotter.XYs
			for i, layout := range Layouts() {
				var xys plotter.XYs
				for _, pp := range r.Config.Ports {
					if s := r.Find(n, pp, layout, metric); s != nil && Median(s.Samples) > 0 {
						xys = append(xys, plotter.XY{X: float64(pp), Y: Median(s.Samples)})
					}
				}
				if err := addLine(p, layout, i, xys); err != nil {
					return err
				}
				all = append(all, xys...)
			}
			setLogRanges(p, all)
			plots[row][col] = p
		}
	}
	return saveTiles(plots, path, 330, 260)
}

func publishChart(r *Results, path string) error {
	p := logLogPlot(fmt.Sprintf("publish one more port, N=%d (median)", r.Config.PublishN), "ports already published P", "milliseconds")
	var all plotter.XYs
	for i, method := range []string{MethodCLI, MethodLib, MethodLegacyPub, MethodNftPub} {
		var xys plotter.XYs
		for _, pp := range r.Config.PublishPorts {
			if s := r.FindControl(KindPublish, pp, method); s != nil {
				xys = append(xys, plotter.XY{X: float64(pp), Y: Median(s.SamplesMS)})
			}
		}
		if err := addLine(p, method, i, xys); err != nil {
			return err
		}
		all = append(all, xys...)
	}
	setLogRanges(p, all)
	return saveTiles([][]*plot.Plot{{p}}, path, 560, 380)
}

func logLogPlot(title, x, y string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text, p.Y.Label.Text = x, y
	p.X.Scale, p.Y.Scale = plot.LogScale{}, plot.LogScale{}
	p.X.Tick.Marker, p.Y.Tick.Marker = logTicks{decades: true}, logTicks{}
	p.Legend.Top, p.Legend.Left = false, true
	p.Legend.TextStyle.Font.Size = vg.Points(8)
	p.Add(plotter.NewGrid())
	return p
}

// setLogRanges fits both log axes to the data with some room, also when
// there is a single point (gonum would otherwise reach 0).
func setLogRanges(p *plot.Plot, xys plotter.XYs) {
	if len(xys) == 0 {
		p.X.Min, p.X.Max, p.Y.Min, p.Y.Max = 1, 10, 1, 10
		return
	}
	p.X.Min, p.X.Max, p.Y.Min, p.Y.Max = math.Inf(1), 0, math.Inf(1), 0
	for _, xy := range xys {
		p.X.Min, p.X.Max = min(p.X.Min, xy.X), max(p.X.Max, xy.X)
		p.Y.Min, p.Y.Max = min(p.Y.Min, xy.Y), max(p.Y.Max, xy.Y)
	}
	p.X.Min, p.X.Max = p.X.Min/1.5, p.X.Max*1.5
	p.Y.Min, p.Y.Max = p.Y.Min/1.5, p.Y.Max*1.5
}

func addLine(p *plot.Plot, name string, i int, xys plotter.XYs) error {
	if len(xys) == 0 {
		return nil
	}
	line, points, err := plotter.NewLinePoints(xys)
	if err != nil {
		return err
	}
	line.Color, points.Color = plotutil.Color(i), plotutil.Color(i)
	line.Width = vg.Points(1.5)
	points.Shape = plotutil.Shape(i)
	p.Add(line, points)
	p.Legend.Add(name, line, points)
	return nil
}

// saveTiles draws a grid of plots, each w×h points, into one PNG.
func saveTiles(plots [][]*plot.Plot, path string, w, h float64) error {
	rows, cols := len(plots), len(plots[0])
	img := vgimg.NewWith(vgimg.UseWH(vg.Points(w*float64(cols)), vg.Points(h*float64(rows))), vgimg.UseDPI(96))
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: rows, Cols: cols, PadX: vg.Millimeter * 4, PadY: vg.Millimeter * 4,
		PadTop: vg.Millimeter * 2, PadBottom: vg.Millimeter * 2, PadLeft: vg.Millimeter * 2, PadRight: vg.Millimeter * 2}
	canvases := plot.Align(plots, tiles, dc)
	for i := range plots {
		for j := range plots[i] {
			if plots[i][j] != nil {
				plots[i][j].Draw(canvases[i][j])
			}
		}
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// logTicks labels 1, 2 and 5 of every decade (or only the decades),
// compactly (20k, 1.5M), so that a log axis spanning less than a decade
// still has labels.
type logTicks struct{ decades bool }

func (lt logTicks) Ticks(lo, hi float64) []plot.Tick {
	if lo <= 0 || math.IsNaN(lo) || math.IsInf(hi, 0) || hi < lo {
		return nil // an empty panel
	}
	var ticks []plot.Tick
	for decade := math.Pow(10, math.Floor(math.Log10(lo))); decade <= hi; decade *= 10 {
		mantissas := []float64{1, 2, 5}
		if lt.decades {
			mantissas = mantissas[:1]
		}
		for _, m := range mantissas {
			if v := m * decade; v >= lo && v <= hi {
				ticks = append(ticks, plot.Tick{Value: v, Label: shortNumber(v)})
			}
		}
	}
	return ticks
}

func shortNumber(v float64) string {
	switch {
	case v >= 1e6:
		return strconv.FormatFloat(v/1e6, 'f', -1, 64) + "M"
	case v >= 1e3:
		return strconv.FormatFloat(v/1e3, 'f', -1, 64) + "k"
	}
	return strconv.FormatFloat(v, 'f', -1, 64)
}
