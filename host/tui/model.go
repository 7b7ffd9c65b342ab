// Package tui is `pmdaemon monit`: a terminal UI (Bubble Tea) over the daemon's API. It polls
// the instance list about once a second, keeps a short history of each instance's CPU and
// memory, follows the selected app's log files, and restarts, reloads or stops the selected
// app after a y/n confirmation. Every call to the daemon and every file read runs in a tea.Cmd,
// so a slow or absent daemon never freezes the screen: it shows "daemon not answering" and
// keeps polling.
package tui

import (
	"context"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/pmdaemon/pmdaemon/host/api"
)

// Options are what monit needs from the CLI.
type Options struct {
	Client *api.Client
	// Colour is false under NO_COLOR, TERM=dumb or off a terminal: the screen then carries no
	// escape sequence of its own.
	Colour bool
	// Bytes and Uptime format memory and uptime as `list` does, so the two agree.
	Bytes  func(uint64) string
	Uptime func(time.Duration) string
	// Poll is how often the list is fetched (default 1s); it is also the retry interval while
	// the daemon does not answer.
	Poll time.Duration
}

// Defaults of Options and of the model's buffers.
const (
	defaultPoll = time.Second
	// listTimeout bounds one poll: a wedged daemon shows as not answering instead of leaving
	// the table silently stale.
	listTimeout = 3 * time.Second
	// actionTimeout bounds a restart, reload or stop; a reload waits for its new instances.
	actionTimeout = 5 * time.Minute
	// historyLen is how many samples of CPU and memory each instance keeps for its sparkline.
	historyLen = 120
	// logKeep is how many log lines the log pane keeps; logTail how many it reads from the end
	// of each file when an app is selected.
	logKeep = 500
	logTail = 50
)

// Model is monit's state. Its methods have pointer receivers: Update changes it in place and
// returns it.
type Model struct {
	opt    Options
	ctx    context.Context // ends when monit quits: pending calls and log followers stop
	cancel context.CancelFunc

	width, height int

	rows     []api.Instance
	cursor   int  // index into rows of the selected instance
	selID    int  // its instance id, to keep the selection across refreshes (-1: none yet)
	polling  bool // a list call is under way
	listErr  error
	lastSeen time.Time // when the daemon last answered

	history map[int]*history // by instance id

	logs logPane

	confirm *action // asked, waiting for y/n
	running *action // sent, waiting for the daemon's answer
	status  string  // the last action's outcome
	failed  bool    // status is an error

	styles styles
}

// New returns monit's model; Run drives it.
func New(opt Options) *Model {
	if opt.Poll <= 0 {
		opt.Poll = defaultPoll
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Model{
		opt: opt, ctx: ctx, cancel: cancel,
		width: 80, height: 24,
		selID:   -1,
		history: map[int]*history{},
		styles:  newStyles(opt.Colour),
	}
}

// Close ends what the model left running: a pending call, the log followers.
func (m *Model) Close() {
	m.cancel()
	m.logs.stop()
}

// Init fetches the list at once and starts the poll clock.
func (m *Model) Init() tea.Cmd {
	m.polling = true
	return tea.Batch(m.fetchList(), m.tick())
}

// Update applies one message.
func (m *Model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.width, m.height = msg.Width, msg.Height
		return m, nil
	case tea.KeyMsg:
		return m, m.onKeys(msg)
	case pollMsg:
		return m, tea.Batch(m.poll(), m.tick())
	case listMsg:
		return m, m.onList(msg)
	case logMsg:
		return m, m.onLogs(msg)
	case actionMsg:
		return m, m.onAction(msg)
	}
	return m, nil
}

// pollMsg is the poll clock's beat.
type pollMsg struct{}

// tick is the next beat. The clock runs on whether or not the last poll answered; poll skips a
// beat while a call is still under way, so calls never pile up behind a slow daemon.
func (m *Model) tick() tea.Cmd {
	return tea.Tick(m.opt.Poll, func(time.Time) tea.Msg { return pollMsg{} })
}

// poll fetches the list unless a fetch is under way.
func (m *Model) poll() tea.Cmd {
	if m.polling {
		return nil
	}
	m.polling = true
	return m.fetchList()
}

// selected is the selected instance, if there is one.
func (m *Model) selected() (api.Instance, bool) {
	if m.cursor < 0 || m.cursor >= len(m.rows) {
		return api.Instance{}, false
	}
	return m.rows[m.cursor], true
}

// quit ends the program and what the model started.
func (m *Model) quit() tea.Cmd {
	m.Close()
	return tea.Quit
}
