package tui

import (
	"context"
	"fmt"
	"strings"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/pmdaemon/pmdaemon/host/api"
)

// listMsg is a poll's answer: the instances, or why there are none.
type listMsg struct {
	rows []api.Instance
	err  error
	at   time.Time
}

// fetchList asks the daemon for the list.
func (m *Model) fetchList() tea.Cmd {
	ctx, c := m.ctx, m.opt.Client
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(ctx, listTimeout)
		defer cancel()
		rows, err := c.List(ctx)
		return listMsg{rows: rows, err: err, at: time.Now()}
	}
}

// onList takes a poll's answer: the table, the samples, the selection and its logs. An error
// keeps the last table on screen under "daemon not answering"; the clock polls again.
func (m *Model) onList(msg listMsg) tea.Cmd {
	m.polling = false
	if msg.err != nil {
		m.listErr = msg.err
		return nil
	}
	m.listErr, m.lastSeen = nil, msg.at
	m.rows = msg.rows
	m.record(msg.rows)
	// The selected instance stays selected wherever it moved; if it is gone, the row that
	// took its place is.
	m.cursor = max(0, min(m.cursor, len(m.rows)-1))
	for i, r := range m.rows {
		if r.ID == m.selID {
			m.cursor = i
		}
	}
	if sel, ok := m.selected(); ok {
		m.selID = sel.ID
	}
	return m.followSelected()
}

// record adds each instance's CPU and memory to its history, and forgets the instances gone.
func (m *Model) record(rows []api.Instance) {
	seen := make(map[int]bool, len(rows))
	for _, r := range rows {
		seen[r.ID] = true
		h := m.history[r.ID]
		if h == nil {
			h = &history{}
			m.history[r.ID] = h
		}
		h.add(r.CPU, float64(r.Memory))
	}
	for id := range m.history {
		if !seen[id] {
			delete(m.history, id)
		}
	}
}

// actionMsg is the daemon's answer to an action.
type actionMsg struct {
	act action
	res *api.Result
	err error
}

// send asks the daemon for act.
func (m *Model) send(act action) tea.Cmd {
	ctx, c := m.ctx, m.opt.Client
	call := map[string]func(context.Context, api.TargetRequest) (*api.Result, error){
		"restart": c.Restart, "reload": c.Reload, "stop": c.Stop,
	}[act.verb]
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(ctx, actionTimeout)
		defer cancel()
		res, err := call(ctx, api.TargetRequest{Target: act.app})
		return actionMsg{act: act, res: res, err: err}
	}
}

// onAction shows an action's outcome and polls at once, so the table shows it too.
func (m *Model) onAction(msg actionMsg) tea.Cmd {
	m.running = nil
	if msg.err != nil {
		m.setStatus(fmt.Sprintf("%s %s failed: %v", msg.act.verb, msg.act.app, oneLine(msg.err.Error())), true)
	} else {
		m.setStatus(outcome(msg.act, msg.res), false)
	}
	return m.poll()
}

// outcome says what an action did: "restarted web (ids 0, 1)", and any warning.
func outcome(act action, res *api.Result) string {
	var ids []string
	var warnings []string
	if res != nil {
		for _, a := range res.Apps {
			for _, id := range a.IDs {
				ids = append(ids, fmt.Sprint(id))
			}
			warnings = append(warnings, a.Warnings...)
		}
		warnings = append(warnings, res.Warnings...)
	}
	s := past[act.verb] + " " + act.app
	if len(ids) > 0 {
		s += fmt.Sprintf(" (ids %s)", strings.Join(ids, ", "))
	}
	if len(warnings) > 0 {
		s += "; warning: " + oneLine(strings.Join(warnings, "; "))
	}
	return s
}

// oneLine keeps a message from the daemon (an error, an instance's reason) on one line of
// the screen, and printable.
func oneLine(s string) string {
	return printable(strings.Join(strings.Fields(s), " "))
}
