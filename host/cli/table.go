package cli

import (
	"io"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/clipperhouse/displaywidth"
)

// table is the style of every listing: light box lines, headers centred, cells left-aligned
// with a space each side, a cell's lines kept as lines, nothing wrapped. It draws what
// tablewriter drew for pmdaemon (TestTableDrawsAsTablewriter holds it to that), without
// linking tablewriter: its initialisation allocates a 650 KB cache in every pmdaemon process
// (0.4 ms and 160 page faults before `list --json` does anything; docs/performance.md).
//
// Unlike tablewriter, control characters in a cell (a tab, an escape sequence in a command
// line or a path) are shown escaped (\t, \x1b) instead of being sent to the terminal, and widths
// are never East Asian: an ambiguous-width character is one column wide.
type table struct {
	w      io.Writer
	header []string
	rows   [][]string
}

func newTable(w io.Writer) *table { return &table{w: w} }

// Header sets the column titles.
func (t *table) Header(titles ...string) { t.header = titles }

// Append adds a row; a row with more cells than the header adds untitled columns.
func (t *table) Append(row []string) error {
	t.rows = append(t.rows, row)
	return nil
}

// Render writes the table.
func (t *table) Render() error {
	cols := len(t.header)
	for _, r := range t.rows {
		cols = max(cols, len(r))
	}
	if cols == 0 {
		return nil
	}
	header := cellLines(t.header, cols)
	var rows [][][]string
	for _, r := range t.rows {
		if len(r) > 0 { // a row of no cells is no line
			rows = append(rows, cellLines(r, cols))
		}
	}
	widths := make([]int, cols)
	for _, r := range append([][][]string{header}, rows...) {
		for c, lines := range r {
			for _, l := range lines {
				widths[c] = max(widths[c], textWidth(l))
			}
		}
	}
	var b strings.Builder
	rule := func(left, mid, right string) {
		b.WriteString(left)
		for c, w := range widths {
			if c > 0 {
				b.WriteString(mid)
			}
			b.WriteString(strings.Repeat("─", w+2))
		}
		b.WriteString(right)
		b.WriteByte('\n')
	}
	row := func(cells [][]string, centred bool) {
		height := 1
		for _, lines := range cells {
			height = max(height, len(lines))
		}
		for i := 0; i < height; i++ {
			if i > 0 && blankLine(cells, i) {
				continue // a blank line inside a cell's text is not drawn
			}
			b.WriteString("│")
			for c, w := range widths {
				var text string
				if i < len(cells[c]) {
					text = cells[c][i]
				}
				pad := w - textWidth(text)
				left := 0
				if centred {
					left = pad / 2
				}
				b.WriteByte(' ')
				b.WriteString(strings.Repeat(" ", left))
				b.WriteString(text)
				b.WriteString(strings.Repeat(" ", pad-left))
				b.WriteString(" │")
			}
			b.WriteByte('\n')
		}
	}
	rule("┌", "┬", "┐")
	if len(t.header) > 0 { // no header: no header row, nor the rule under it
		row(header, true)
		if len(t.rows) > 0 { // drawn once a row is appended, even one of no cells
			rule("├", "┼", "┤")
		}
	}
	for _, r := range rows {
		row(r, false)
	}
	rule("└", "┴", "┘")
	_, err := io.WriteString(t.w, b.String())
	return err
}

// blankLine reports whether line i of a row is empty in every cell.
func blankLine(cells [][]string, i int) bool {
	for _, lines := range cells {
		if i < len(lines) && lines[i] != "" {
			return false
		}
	}
	return true
}

// cellLines is each of cols cells of r as its lines (CRLF or LF), the cell trimmed, made
// printable; a missing cell is empty.
func cellLines(r []string, cols int) [][]string {
	out := make([][]string, cols)
	for c := range out {
		var cell string
		if c < len(r) {
			cell = r[c]
		}
		cell = strings.TrimSpace(strings.ReplaceAll(cell, "\r\n", "\n"))
		for _, l := range strings.Split(cell, "\n") {
			out[c] = append(out[c], printable(l))
		}
	}
	return out
}

// printable shows control characters and invalid UTF-8 escaped, as Go would quote them.
func printable(s string) string {
	if !strings.ContainsFunc(s, func(r rune) bool { return r == utf8.RuneError || unicode.IsControl(r) }) {
		return s
	}
	var b strings.Builder
	for i, r := range s {
		switch {
		case r == utf8.RuneError && !strings.HasPrefix(s[i:], "\uFFFD"):
			b.WriteString(`\x` + strconv.FormatUint(uint64(s[i]), 16))
		case unicode.IsControl(r):
			q := strconv.QuoteRuneToASCII(r)
			b.WriteString(q[1 : len(q)-1])
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// textWidth is how many terminal columns s takes, rune by rune.
func textWidth(s string) int {
	n := 0
	for _, r := range s {
		if r < 0x80 {
			n++
			continue
		}
		n += displaywidth.Options{}.Rune(r)
	}
	return n
}
