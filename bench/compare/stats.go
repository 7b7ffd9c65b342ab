package main

import (
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
	"unicode/utf8"
)

// summary is what the table shows for one manager and one metric: the median of the per-run
// values, their range and how many runs produced a value.
type summary struct {
	N                int
	Median, Min, Max float64
}

// summarize returns the median, min and max of vals; ok is false when there are none.
func summarize(vals []float64) (s summary, ok bool) {
	if len(vals) == 0 {
		return summary{}, false
	}
	v := append([]float64(nil), vals...)
	sort.Float64s(v)
	s.N = len(v)
	s.Min, s.Max = v[0], v[len(v)-1]
	if len(v)%2 == 1 {
		s.Median = v[len(v)/2]
	} else {
		s.Median = (v[len(v)/2-1] + v[len(v)/2]) / 2
	}
	return s, true
}

// median of vals (0 for none).
func median(vals []float64) float64 {
	s, _ := summarize(vals)
	return s.Median
}

// formatValue prints a figure with a precision that suits its unit and size.
func formatValue(v float64, unit string) string {
	switch unit {
	case "MB":
		return fmt.Sprintf("%.1f", v)
	case "req":
		// A count of requests; a median of an even number of runs may end in .5.
		if v == math.Trunc(v) {
			return fmt.Sprintf("%.0f", v)
		}
		return fmt.Sprintf("%.1f", v)
	case "%":
		if v != 0 && math.Abs(v) < 0.1 {
			return fmt.Sprintf("%.3f", v)
		}
		return fmt.Sprintf("%.2f", v)
	}
	a := math.Abs(v)
	switch {
	case a < 10:
		return fmt.Sprintf("%.2f", v)
	case a < 100:
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.0f", v)
}

// formatCell prints "median (min–max)", and " n=K/R" when only K of R runs gave a value.
func formatCell(vals []float64, unit string, runs int) string {
	s, ok := summarize(vals)
	if !ok {
		return "-"
	}
	out := fmt.Sprintf("%s (%s–%s)", formatValue(s.Median, unit), formatValue(s.Min, unit), formatValue(s.Max, unit))
	if s.N < runs {
		out += fmt.Sprintf(" n=%d/%d", s.N, runs)
	}
	return out
}

// ratio is PM2's median over pmdaemon's for a lower-is-better metric (how many times more PM2
// takes); ok is false when either side is missing or pmdaemon's median is zero.
func ratio(pmd, pm2 []float64) (r float64, ok bool) {
	a, okA := summarize(pmd)
	b, okB := summarize(pm2)
	if !okA || !okB || a.Median <= 0 || b.Median < 0 {
		return 0, false
	}
	return b.Median / a.Median, true
}

// formatRatio prints a ratio like "23.4x" ("154x" from 100 up, "-" when there is none).
func formatRatio(r float64, ok bool) string {
	if !ok || math.IsNaN(r) || math.IsInf(r, 0) {
		return "-"
	}
	if r >= 100 {
		return fmt.Sprintf("%.0fx", r)
	}
	if r < 0.1 {
		return fmt.Sprintf("%.2fx", r)
	}
	return fmt.Sprintf("%.1fx", r)
}

// tableRow is one printed line of the results table.
type tableRow struct{ Metric, PMDaemon, PM2, Ratio string }

var tableHeader = tableRow{"metric", "pmdaemon median (min–max)", "PM2 median (min–max)", "ratio PM2/pmdaemon"}

// renderTable writes rows as an aligned text table, or as a Markdown table.
func renderTable(w io.Writer, rows []tableRow, markdown bool) error {
	cells := func(r tableRow) []string { return []string{r.Metric, r.PMDaemon, r.PM2, r.Ratio} }
	grid := make([][]string, len(rows))
	for i, r := range rows {
		grid[i] = cells(r)
	}
	return renderGrid(w, cells(tableHeader), grid, markdown)
}

// renderGrid writes header and rows as an aligned text table (first column left-aligned, the
// figures right-aligned), or as a Markdown table. Every row has as many cells as header.
func renderGrid(w io.Writer, header []string, rows [][]string, markdown bool) error {
	all := append([][]string{header}, rows...)
	var b strings.Builder
	if markdown {
		for i, r := range all {
			c := append([]string(nil), r...)
			for j := range c {
				c[j] = strings.ReplaceAll(c[j], "|", `\|`)
			}
			b.WriteString("| " + strings.Join(c, " | ") + " |\n")
			if i == 0 {
				b.WriteString("|---|" + strings.Repeat("---:|", len(header)-1) + "\n")
			}
		}
		_, err := io.WriteString(w, b.String())
		return err
	}
	width := make([]int, len(header))
	for _, r := range all {
		for j, c := range r {
			width[j] = max(width[j], utf8.RuneCountInString(c))
		}
	}
	pad := func(s string, n int, right bool) string {
		fill := strings.Repeat(" ", n-utf8.RuneCountInString(s))
		if right {
			return fill + s
		}
		return s + fill
	}
	total := 2 * (len(width) - 1)
	for _, n := range width {
		total += n
	}
	for i, c := range all {
		line := pad(c[0], width[0], false)
		for j := 1; j < len(c); j++ {
			line += "  " + pad(c[j], width[j], i > 0)
		}
		b.WriteString(strings.TrimRight(line, " ") + "\n")
		if i == 0 {
			b.WriteString(strings.Repeat("-", total) + "\n")
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}
