package tui

import (
	"fmt"
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/pmdaemon/pmdaemon/host/api"
)

// driver runs a Model as Bubble Tea's loop does, on the test's goroutine: each command runs in
// a goroutine of its own, its message comes back to Update in order of arrival. The test sees
// the model between messages, so it reads the model's state without a race.
type driver struct {
	t    *testing.T
	m    *Model
	msgs chan tea.Msg
	done chan struct{}
	quit bool
}

// drive starts m (its Init) and stops what it runs at the end of the test.
func drive(t *testing.T, m *Model) *driver {
	d := &driver{t: t, m: m, msgs: make(chan tea.Msg), done: make(chan struct{})}
	t.Cleanup(func() {
		m.Close()
		close(d.done)
	})
	d.run(m.Init())
	return d
}

// newModel is a model of the daemon at socket with the formats of `list`, polling fast.
func newModel(c *api.Client, colour bool) *Model {
	return New(Options{
		Client: c, Colour: colour, Poll: 100 * time.Millisecond,
		Bytes:  func(b uint64) string { return fmt.Sprintf("%d B", b) },
		Uptime: func(d time.Duration) string { return d.Truncate(time.Second).String() },
	})
}

// run runs cmd as Bubble Tea does: a batch is its commands, each in a goroutine.
func (d *driver) run(cmd tea.Cmd) {
	if cmd == nil {
		return
	}
	go func() {
		msg := cmd()
		select {
		case d.msgs <- msg:
		case <-d.done:
		}
	}()
}

// handle gives msg to the model, or runs the batch it is, and notes a quit.
func (d *driver) handle(msg tea.Msg) {
	switch msg := msg.(type) {
	case nil:
	case tea.BatchMsg:
		for _, c := range msg {
			d.run(c)
		}
	case tea.QuitMsg:
		d.quit = true
	default:
		_, cmd := d.m.Update(msg)
		d.run(cmd)
	}
}

// send gives the model msg now (a key, a resize), ahead of what is waiting.
func (d *driver) send(msg tea.Msg) { d.handle(msg) }

// key presses one key.
func (d *driver) key(k string) {
	var msg tea.KeyMsg
	switch k {
	case "up":
		msg = tea.KeyMsg{Type: tea.KeyUp}
	case "down":
		msg = tea.KeyMsg{Type: tea.KeyDown}
	case "ctrl+c":
		msg = tea.KeyMsg{Type: tea.KeyCtrlC}
	case "esc":
		msg = tea.KeyMsg{Type: tea.KeyEsc}
	default:
		msg = tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune(k)}
	}
	d.send(msg)
}

// until handles messages until cond holds, and fails the test at timeout with the screen.
func (d *driver) until(timeout time.Duration, what string, cond func() bool) {
	d.t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for !cond() {
		select {
		case msg := <-d.msgs:
			d.handle(msg)
		case <-deadline.C:
			d.t.Fatalf("timed out after %s waiting for %s; the screen:\n%s", timeout, what, d.m.View())
		}
	}
}

// screen is the view as a terminal of the model's size shows it.
func (d *driver) screen() string { return d.m.View() }

// shows is an until condition: the screen contains every s.
func (d *driver) shows(ss ...string) func() bool {
	return func() bool {
		v := d.screen()
		for _, s := range ss {
			if !strings.Contains(v, s) {
				return false
			}
		}
		return true
	}
}
