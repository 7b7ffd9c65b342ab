package tui

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/charmbracelet/x/ansi"

	"github.com/pmdaemon/pmdaemon/host/api"
)

// styles colour the screen. Without colour every style is empty, and an empty style adds
// nothing: the screen then has no escape sequence of monit's own (NO_COLOR, TERM=dumb).
type styles struct {
	title, header, selected, dim, bad, warn, good ansi.Style
}

func newStyles(colour bool) styles {
	if !colour {
		return styles{}
	}
	var s ansi.Style
	return styles{
		title:    s.Bold(),
		header:   s.Bold().Underline(),
		selected: s.Reverse(),
		dim:      s.ForegroundColor(ansi.BrightBlack),
		bad:      s.Bold().ForegroundColor(ansi.Red),
		warn:     s.ForegroundColor(ansi.Yellow),
		good:     s.ForegroundColor(ansi.Green),
	}
}

// The table's columns, as `list` has them; Name takes the width the others leave.
var columns = []struct {
	title string
	width int
	right bool
}{
	{"ID", 3, true}, {"Name", 0, false}, {"Status", 16, false}, {"PID", 7, true}, {"Port", 5, true},
	{"CPU%", 5, true}, {"Memory", 9, true}, {"Uptime", 7, true}, {"↺", 3, true},
}

// minName is the narrowest the Name column gets before lines are cut at the screen's edge.
const minName = 6

// help is the status line when there is nothing else to say.
const help = "↑/↓ j/k select · r restart · R/l reload · s stop · q quit"

// View draws the screen: a title (or the daemon's trouble), the table, the selected
// instance's CPU and memory, the selected app's logs and the status line. Every line is cut to
// the width and the whole to the height, so any terminal size draws without wrapping.
func (m *Model) View() string {
	w, h := m.width, m.height
	if w <= 0 || h <= 0 {
		return ""
	}
	// The table and the log pane (its title line included) share what the fixed lines leave:
	// the table takes what it needs up to half.
	const fixed = 6 // title, table header, detail title, CPU, memory, status
	avail := h - fixed
	tableRows := max(1, min(len(m.rows), avail/2))
	logRows := max(0, avail-tableRows)

	var lines []string
	lines = append(lines, m.titleLine())
	lines = append(lines, m.styles.header.Styled(m.tableLine(headerCells(), w)))
	lines = append(lines, m.tableBody(tableRows, w)...)
	lines = append(lines, m.detail(w)...)
	lines = append(lines, m.logLines(logRows, w)...)
	lines = append(lines, m.statusLine())
	if len(lines) > h {
		// The status line stays: it asks the y/n question.
		lines = append(lines[:h-1], lines[len(lines)-1])
	}
	for i, l := range lines {
		lines[i] = ansi.Truncate(l, w, "…")
	}
	return strings.Join(lines, "\n")
}

// titleLine names what is shown, or says that the daemon does not answer.
func (m *Model) titleLine() string {
	if m.listErr != nil {
		s := fmt.Sprintf("daemon not answering (retrying every %s)", m.opt.Poll)
		if !m.lastSeen.IsZero() {
			s += " · table as of " + m.lastSeen.Format("15:04:05")
		}
		s += " · " + oneLine(m.listErr.Error())
		return m.styles.bad.Styled(s)
	}
	if m.lastSeen.IsZero() {
		return m.styles.title.Styled("pmdaemon monit · asking the daemon…")
	}
	apps := map[string]bool{}
	for _, r := range m.rows {
		apps[r.Name] = true
	}
	return m.styles.title.Styled(fmt.Sprintf("pmdaemon monit · %d app%s, %d instance%s",
		len(apps), plural(len(apps)), len(m.rows), plural(len(m.rows))))
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

func headerCells() []string {
	cells := make([]string, len(columns))
	for i, c := range columns {
		cells[i] = c.title
	}
	return cells
}

// tableLine lays cells out in the columns of a screen w wide, behind a two-character margin
// that marks the selected row.
func (m *Model) tableLine(cells []string, w int) string {
	fixed := 2
	for _, c := range columns {
		fixed += c.width + 1
	}
	name := max(minName, w-fixed)
	var b strings.Builder
	b.WriteString("  ")
	for i, c := range columns {
		width := c.width
		if width == 0 {
			width = name
		}
		cell := ansi.Truncate(cells[i], width, "…")
		pad := strings.Repeat(" ", max(0, width-ansi.StringWidth(cell)))
		if c.right {
			b.WriteString(pad + cell)
		} else {
			b.WriteString(cell + pad)
		}
		if i < len(columns)-1 {
			b.WriteString(" ")
		}
	}
	return b.String()
}

// tableBody is n rows of the table, scrolled to keep the selected one in view.
func (m *Model) tableBody(n, w int) []string {
	if len(m.rows) == 0 {
		if m.lastSeen.IsZero() {
			return []string{""}
		}
		return []string{m.styles.dim.Styled("  no apps: start one with pmdaemon start or pmdaemon run")}
	}
	first := max(0, min(m.cursor-n/2, len(m.rows)-n))
	var out []string
	for i := first; i < first+n && i < len(m.rows); i++ {
		r := m.rows[i]
		line := m.tableLine(m.cells(r), w)
		if i == m.cursor {
			line = m.styles.selected.Styled("›" + line[1:])
		} else {
			line = m.statusStyle(r.Status).Styled(line)
		}
		out = append(out, line)
	}
	return out
}

// cells is one instance's row.
func (m *Model) cells(r api.Instance) []string {
	pid, port, uptime := "-", "-", "-"
	if r.Pid > 0 {
		pid = strconv.Itoa(r.Pid)
		uptime = m.opt.Uptime(time.Duration(r.UptimeMS) * time.Millisecond)
	}
	if r.Port != nil {
		port = strconv.Itoa(*r.Port)
	}
	status := r.Status
	if r.Health != "" {
		status += " (" + r.Health + ")"
	}
	return []string{
		strconv.Itoa(r.ID), r.Name, status, pid, port,
		strconv.FormatFloat(r.CPU, 'f', 1, 64), m.opt.Bytes(r.Memory), uptime, strconv.Itoa(r.Restarts),
	}
}

func (m *Model) statusStyle(status string) ansi.Style {
	switch status {
	case "online":
		return m.styles.good
	case "errored":
		return m.styles.bad
	case "stopped":
		return m.styles.dim
	}
	return m.styles.warn
}

// detail is the selected instance's title, and its CPU and memory with their sparklines.
func (m *Model) detail(w int) []string {
	sel, ok := m.selected()
	if !ok {
		return []string{rule("", w), "", ""}
	}
	title := fmt.Sprintf("%s · id %d · instance %d", sel.Name, sel.ID, sel.Index)
	if sel.Reason != "" {
		title += " · " + oneLine(sel.Reason)
	}
	var cpu, mem []float64
	if h := m.history[sel.ID]; h != nil {
		cpu, mem = h.cpu, h.mem
	}
	const label = 32 // "CPU    123.4%  " before the sparkline, "  max 1023.9 MB" after it
	cpuSpark, cpuTop := sparkline(cpu, w-label)
	memSpark, memTop := sparkline(mem, w-label)
	return []string{
		m.styles.title.Styled(rule(title, w)),
		fmt.Sprintf("CPU %9s  %s  max %s", strconv.FormatFloat(sel.CPU, 'f', 1, 64)+"%", m.styles.good.Styled(cpuSpark),
			strconv.FormatFloat(cpuTop, 'f', 1, 64)+"%"),
		fmt.Sprintf("Mem %9s  %s  max %s", m.opt.Bytes(sel.Memory), m.styles.good.Styled(memSpark), m.opt.Bytes(uint64(memTop))),
	}
}

// logLines is the log pane's title and its last n-1 lines.
func (m *Model) logLines(n, w int) []string {
	if n <= 0 {
		return nil
	}
	title := "logs"
	if m.logs.app != "" {
		title = "logs of " + m.logs.app
	}
	out := []string{m.styles.title.Styled(rule(title, w))}
	lines := m.logs.lines
	if len(lines) > n-1 {
		lines = lines[len(lines)-(n-1):]
	}
	out = append(out, lines...)
	for len(out) < n {
		out = append(out, "")
	}
	return out
}

// statusLine is the y/n question, the last action's outcome, or the keys.
func (m *Model) statusLine() string {
	switch {
	case m.confirm != nil:
		return m.styles.warn.Styled(fmt.Sprintf("%s %s? (y/n)", m.confirm.verb, m.confirm.app))
	case m.status != "" && m.failed:
		return m.styles.bad.Styled(m.status)
	case m.status != "":
		return m.status + " · " + m.styles.dim.Styled(help)
	}
	return m.styles.dim.Styled(help)
}

// rule is "── title ─────" across w columns.
func rule(title string, w int) string {
	s := "──"
	if title != "" {
		s += " " + title + " "
	}
	return s + strings.Repeat("─", max(0, w-ansi.StringWidth(s)))
}
