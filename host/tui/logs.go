package tui

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/ansi"

	"github.com/pmdaemon/pmdaemon/host/api"
	"github.com/pmdaemon/pmdaemon/host/logs"
)

// followPoll is how often the log followers look at the files (as `logs --follow` does).
const followPoll = 200 * time.Millisecond

// logPane is the selected app's log: the last lines of each of its files, then every line
// appended to them, read by followers that run until the selection moves to another app.
type logPane struct {
	key    string // the app and its files: a change starts new followers
	app    string
	gen    int // tells this pane's messages from those of followers already stopped
	lines  []string
	cancel context.CancelFunc
}

// stop ends the pane's followers.
func (p *logPane) stop() {
	if p.cancel != nil {
		p.cancel()
		p.cancel = nil
	}
}

// logFile is one file of the pane and the label its lines carry: the instance id, and "err"
// for the error log.
type logFile struct{ path, label string }

// appLogFiles are the log files of app's instances, each once (instances may share a file).
func appLogFiles(rows []api.Instance, app string) []logFile {
	var files []logFile
	seen := map[string]bool{}
	for _, r := range rows {
		if r.Name != app {
			continue
		}
		for _, f := range []logFile{{r.OutLog, fmt.Sprint(r.ID)}, {r.ErrLog, fmt.Sprintf("%d err", r.ID)}} {
			if f.path != "" && !seen[f.path] {
				seen[f.path] = true
				files = append(files, f)
			}
		}
	}
	return files
}

// followSelected starts following the selected app's logs, unless they are followed already.
func (m *Model) followSelected() tea.Cmd {
	sel, ok := m.selected()
	if !ok {
		m.logs.stop()
		m.logs = logPane{gen: m.logs.gen + 1}
		return nil
	}
	files := appLogFiles(m.rows, sel.Name)
	key := sel.Name
	for _, f := range files {
		key += "\x00" + f.path
	}
	if key == m.logs.key {
		return nil
	}
	m.logs.stop()
	ctx, cancel := context.WithCancel(m.ctx)
	m.logs = logPane{key: key, app: sel.Name, gen: m.logs.gen + 1, cancel: cancel}
	lines := make(chan string, 256)
	return tea.Batch(followLogs(ctx, files, lines), waitLogs(m.logs.gen, lines))
}

// logMsg carries lines from the followers of pane gen; done says they have all stopped.
type logMsg struct {
	gen   int
	lines []string
	from  <-chan string
	done  bool
}

// onLogs adds the lines to the pane and waits for more; lines of a pane left behind are
// dropped.
func (m *Model) onLogs(msg logMsg) tea.Cmd {
	if msg.gen != m.logs.gen {
		return nil
	}
	m.logs.lines = append(m.logs.lines, msg.lines...)
	if over := len(m.logs.lines) - logKeep; over > 0 {
		m.logs.lines = append([]string(nil), m.logs.lines[over:]...)
	}
	if msg.done {
		return nil
	}
	return waitLogs(msg.gen, msg.from)
}

// waitLogs waits for the next line, then takes whatever else is waiting, so a burst is one
// message and one redraw.
func waitLogs(gen int, from <-chan string) tea.Cmd {
	return func() tea.Msg {
		line, ok := <-from
		if !ok {
			return logMsg{gen: gen, done: true}
		}
		msg := logMsg{gen: gen, lines: []string{line}, from: from}
		for len(msg.lines) < logKeep {
			select {
			case line, ok := <-from:
				if !ok {
					msg.done = true
					return msg
				}
				msg.lines = append(msg.lines, line)
			default:
				return msg
			}
		}
		return msg
	}
}

// followLogs sends the last lines of each file, then the lines appended to them (across
// rotations and flushes, as `logs --follow`), until ctx ends; then it closes out.
func followLogs(ctx context.Context, files []logFile, out chan<- string) tea.Cmd {
	return func() tea.Msg {
		defer close(out)
		positions := make([]logs.Position, len(files))
		for i, f := range files {
			tail, pos, err := logs.Tail(f.path, logTail)
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				send(ctx, out, fmt.Sprintf("%s | cannot read %s: %v", f.label, f.path, err))
			}
			for _, l := range tail {
				send(ctx, out, labelled(f.label, l))
			}
			positions[i] = pos
		}
		var wg sync.WaitGroup
		for i, f := range files {
			wg.Go(func() {
				w := &lineSink{ctx: ctx, out: out, label: f.label}
				err := logs.FollowFrom(ctx, f.path, positions[i], w, followPoll)
				if err != nil && ctx.Err() == nil {
					send(ctx, out, fmt.Sprintf("%s | stopped following %s: %v", f.label, f.path, err))
				}
			})
		}
		wg.Wait()
		return nil
	}
}

// send puts line on out unless ctx ends first.
func send(ctx context.Context, out chan<- string, line string) error {
	select {
	case out <- line:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// lineSink sends each complete line written to it, labelled; an unterminated line waits for
// its end.
type lineSink struct {
	ctx     context.Context
	out     chan<- string
	label   string
	partial []byte
}

func (s *lineSink) Write(p []byte) (int, error) {
	data := append(s.partial, p...)
	for {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			break
		}
		if err := send(s.ctx, s.out, labelled(s.label, string(data[:i]))); err != nil {
			return 0, err
		}
		data = data[i+1:]
	}
	s.partial = append(s.partial[:0:0], data...)
	return len(p), nil
}

// labelled is a log line as the pane shows it: "label | text", with the text made safe for
// the terminal (an app's colours, cursor moves and other control characters removed, tabs
// expanded).
func labelled(label, line string) string {
	return label + " | " + printable(line)
}

// printable removes escape sequences, control and invisible format characters (bidi
// overrides), so that an app's output cannot move the cursor or change the screen; a tab
// becomes spaces.
func printable(s string) string {
	s = ansi.Strip(s)
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || unicode.In(r, unicode.Cf, unicode.Zl, unicode.Zp) || r == utf8.RuneError {
			return -1
		}
		return r
	}, strings.ReplaceAll(s, "\t", "    "))
}
