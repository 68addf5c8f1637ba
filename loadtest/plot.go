package loadtest

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// WritePlot draws latency by percentile, one line per scenario, to path
// (.png or .svg, by extension). The x axis is HdrHistogram's "nines"
// scale: 1/(1-p) on a log axis, so 90%, 99%, 99.9% ... are equally
// spaced and the tail gets as much room as the median.
func (r *Report) WritePlot(path string) error {
	p := plot.New()
	p.Title.Text = "cloudkey latency by percentile: " + r.modeTitle()
	p.Title.Padding = vg.Points(8)
	p.X.Label.Text = "percentile"
	p.Y.Label.Text = "latency (ms)"
	p.X.Scale = plot.LogScale{}
	p.Y.Min = 0
	p.Legend.Top, p.Legend.Left = true, true
	p.Add(plotter.NewGrid())

	maxInv := 1.0
	for i, sc := range r.Scenarios {
		var xys plotter.XYs
		for _, pt := range sc.Percentiles {
			if pt.Percentile >= 100 { // the maximum has no place on this axis
				continue
			}
			inv := 1 / (1 - pt.Percentile/100)
			maxInv = math.Max(maxInv, inv)
			xys = append(xys, plotter.XY{X: inv, Y: float64(pt.Micros) / 1000})
		}
		if len(xys) < 2 {
			continue // one point draws no line
		}
		l, err := plotter.NewLine(xys)
		if err != nil {
			return fmt.Errorf("loadtest: plot %s: %w", sc.Scenario, err)
		}
		l.Color = plotutil.DarkColors[i%len(plotutil.DarkColors)]
		l.Width = vg.Points(1.5)
		l.Dashes = plotutil.Dashes(i / len(plotutil.DarkColors))
		p.Add(l)
		label := fmt.Sprintf("%s (p99 %s, %.0f/s)", sc.Scenario, fmtMicros(sc.Latency.P99), sc.Throughput)
		p.Legend.Add(label, l)
	}
	if maxInv <= 1 {
		return errors.New("loadtest: plot: no scenario has enough requests to draw")
	}
	p.X.Min, p.X.Max = 1, math.Pow(10, math.Ceil(math.Log10(maxInv)))
	p.X.Tick.Marker = ninesTicks{}
	p.Y.Tick.Marker = plainTicks{}
	if err := p.Save(9*vg.Inch, 5.5*vg.Inch, path); err != nil {
		return fmt.Errorf("loadtest: write plot: %w", err)
	}
	return nil
}

func (r *Report) modeTitle() string {
	if r.Settings.Mode == "closed loop" {
		return fmt.Sprintf("closed loop, %d workers", r.Settings.Concurrency)
	}
	return fmt.Sprintf("open loop at %s rps", formatRate(r.Settings.Rate))
}

// plainTicks are gonum's default ticks labelled without trailing zeros
// ("25", not "25.00").
type plainTicks struct{}

func (plainTicks) Ticks(lo, hi float64) []plot.Tick {
	ticks := plot.DefaultTicks{}.Ticks(lo, hi)
	for i, t := range ticks {
		if t.Label != "" {
			ticks[i].Label = strconv.FormatFloat(t.Value, 'g', -1, 64)
		}
	}
	return ticks
}

// ninesTicks labels decades of 1/(1-p) as percentiles: 1 → 0%, 10 → 90%,
// 100 → 99%, 1000 → 99.9% ...
type ninesTicks struct{}

func (ninesTicks) Ticks(lo, hi float64) []plot.Tick {
	var ticks []plot.Tick
	for k := 0; math.Pow(10, float64(k)) <= hi*1.0001; k++ {
		v := math.Pow(10, float64(k))
		if v >= lo {
			ticks = append(ticks, plot.Tick{Value: v, Label: ninesLabel(k)})
		}
		for m := 2.0; m < 10 && v*m <= hi; m++ { // minor ticks between decades
			ticks = append(ticks, plot.Tick{Value: v * m})
		}
	}
	return ticks
}

// ninesLabel is the percentile with k nines: 0%, 90%, 99%, 99.9% ...
func ninesLabel(k int) string {
	switch k {
	case 0:
		return "0%"
	case 1:
		return "90%"
	case 2:
		return "99%"
	}
	return "99." + strings.Repeat("9", k-2) + "%"
}
