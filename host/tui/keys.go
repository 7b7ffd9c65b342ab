package tui

import (
	"fmt"

	tea "github.com/charmbracelet/bubbletea"
)

// action is a restart, reload or stop of one app.
type action struct {
	verb string // "restart", "reload" or "stop"
	app  string
}

// verbs are the actions' keys.
var verbs = map[string]string{"r": "restart", "R": "reload", "l": "reload", "s": "stop"}

// past is how the status line tells an action done.
var past = map[string]string{"restart": "restarted", "reload": "reloaded", "stop": "stopped"}

// doing is how the status line tells an action under way.
var doing = map[string]string{"restart": "restarting", "reload": "reloading", "stop": "stopping"}

// onKeys handles a key message. Keys typed faster than the screen reads them come as one
// message of several runes ("jj"): each is a key. A paste is no command.
func (m *Model) onKeys(msg tea.KeyMsg) tea.Cmd {
	if msg.Paste {
		return nil
	}
	if msg.Type != tea.KeyRunes || len(msg.Runes) < 2 {
		return m.onKey(msg.String())
	}
	var cmds []tea.Cmd
	for _, r := range msg.Runes {
		cmds = append(cmds, m.onKey(string(r)))
	}
	return tea.Batch(cmds...)
}

// onKey handles a key press. ctrl+c quits at any moment; while a confirmation is asked, y runs
// the action and any other key cancels it.
func (m *Model) onKey(key string) tea.Cmd {
	if key == "ctrl+c" {
		return m.quit()
	}
	if m.confirm != nil {
		act := *m.confirm
		m.confirm = nil
		if key != "y" && key != "Y" {
			m.setStatus(fmt.Sprintf("%s %s cancelled", act.verb, act.app), false)
			return nil
		}
		m.running = &act
		m.setStatus(fmt.Sprintf("%s %s…", doing[act.verb], act.app), false)
		return m.send(act)
	}
	switch key {
	case "q":
		return m.quit()
	case "up", "k":
		return m.move(m.cursor - 1)
	case "down", "j":
		return m.move(m.cursor + 1)
	case "home", "g":
		return m.move(0)
	case "end", "G":
		return m.move(len(m.rows) - 1)
	}
	verb, ok := verbs[key]
	if !ok {
		return nil
	}
	sel, ok := m.selected()
	switch {
	case !ok:
		m.setStatus("no app selected", true)
	case m.running != nil:
		m.setStatus(fmt.Sprintf("still %s %s; wait for its answer", doing[m.running.verb], m.running.app), true)
	default:
		m.confirm = &action{verb: verb, app: sel.Name}
	}
	return nil
}

// move selects the row at index i (clamped to the table).
func (m *Model) move(i int) tea.Cmd {
	if len(m.rows) == 0 {
		return nil
	}
	m.cursor = max(0, min(i, len(m.rows)-1))
	m.selID = m.rows[m.cursor].ID
	return m.followSelected()
}

func (m *Model) setStatus(s string, failed bool) {
	m.status, m.failed = s, failed
}
