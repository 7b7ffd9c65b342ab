package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestSummarize(t *testing.T) {
	cases := []struct {
		in          []float64
		med, lo, hi float64
		n           int
	}{
		{[]float64{5}, 5, 5, 5, 1},
		{[]float64{3, 1, 2}, 2, 1, 3, 3},
		{[]float64{4, 1, 3, 2}, 2.5, 1, 4, 4},
		{[]float64{10, 10, 1, 1000, 10}, 10, 1, 1000, 5},
	}
	for _, c := range cases {
		s, ok := summarize(c.in)
		if !ok || s.Median != c.med || s.Min != c.lo || s.Max != c.hi || s.N != c.n {
			t.Errorf("summarize(%v) = %+v %v", c.in, s, ok)
		}
	}
	if _, ok := summarize(nil); ok {
		t.Error("summarize(nil) ok")
	}
	in := []float64{3, 1, 2}
	summarize(in)
	if in[0] != 3 || in[1] != 1 {
		t.Errorf("summarize sorted its argument: %v", in)
	}
	if median(nil) != 0 {
		t.Error("median(nil) != 0")
	}
}

func TestRatio(t *testing.T) {
	cases := []struct {
		a, b []float64
		want string
	}{
		{[]float64{5, 4, 6}, []float64{117, 100, 130}, "23.4x"},
		{[]float64{1}, []float64{154}, "154x"},
		{[]float64{10}, []float64{8}, "0.8x"},
		{[]float64{100}, []float64{1}, "0.01x"},
		{[]float64{0}, []float64{5}, "-"},
		{nil, []float64{5}, "-"},
		{[]float64{5}, nil, "-"},
	}
	for _, c := range cases {
		if got := formatRatio(ratio(c.a, c.b)); got != c.want {
			t.Errorf("ratio(%v, %v) = %q, want %q", c.a, c.b, got, c.want)
		}
	}
}

func TestFormatCell(t *testing.T) {
	cases := []struct {
		vals []float64
		unit string
		runs int
		want string
	}{
		{[]float64{4.671, 5.38, 5.44}, "ms", 3, "5.38 (4.67–5.44)"},
		{[]float64{308, 437, 326}, "ms", 3, "326 (308–437)"},
		{[]float64{17.63, 17.5}, "MB", 3, "17.6 (17.5–17.6) n=2/3"},
		{[]float64{0.2, 0.4, 0.2}, "%", 3, "0.20 (0.20–0.40)"},
		{[]float64{0.05}, "%", 1, "0.050 (0.050–0.050)"},
		{nil, "ms", 3, "-"},
	}
	for _, c := range cases {
		if got := formatCell(c.vals, c.unit, c.runs); got != c.want {
			t.Errorf("formatCell(%v, %s) = %q, want %q", c.vals, c.unit, got, c.want)
		}
	}
}

func TestRenderTable(t *testing.T) {
	rows := []tableRow{
		{"list, ms", "5.00 (4.48–5.10)", "121 (105–143)", "24.2x"},
		{"rss, MB", "17.6 (17.5–17.7)", "skipped", "-"},
	}
	var b bytes.Buffer
	if err := renderTable(&b, rows, false); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(b.String(), "\n"), "\n")
	if len(lines) != 4 {
		t.Fatalf("want header, rule and 2 rows, got:\n%s", b.String())
	}
	if !strings.HasPrefix(lines[0], "metric") || !strings.Contains(lines[0], "pmdaemon median (min–max)") || !strings.HasPrefix(lines[1], "-----") {
		t.Errorf("header:\n%s", b.String())
	}
	// Right-aligned figures: every row ends at the same column, counted in runes ("–" is
	// multi-byte).
	w := len([]rune(lines[0]))
	for _, l := range lines[1:] {
		if len([]rune(l)) != w {
			t.Errorf("line %q is %d runes wide, header %d", l, len([]rune(l)), w)
		}
	}
	if !strings.HasSuffix(lines[2], "  24.2x") || !strings.HasPrefix(lines[3], "rss, MB ") {
		t.Errorf("rows:\n%s", b.String())
	}

	b.Reset()
	if err := renderTable(&b, []tableRow{{"a|b", "1", "2", "2.0x"}}, true); err != nil {
		t.Fatal(err)
	}
	want := "| metric | pmdaemon median (min–max) | PM2 median (min–max) | ratio PM2/pmdaemon |\n" +
		"|---|---:|---:|---:|\n" +
		"| a\\|b | 1 | 2 | 2.0x |\n"
	if b.String() != want {
		t.Errorf("markdown:\n%s\nwant:\n%s", b.String(), want)
	}
}
