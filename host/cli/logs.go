package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/pmdaemon/pmdaemon/host/api"
	"github.com/pmdaemon/pmdaemon/host/config"
	"github.com/pmdaemon/pmdaemon/host/logs"
)

func (e *Env) logsCmd() *cobra.Command {
	var lines int
	var follow, errOnly, outOnly bool
	var stampFormat string
	cmd := &cobra.Command{
		Use:   "logs [TARGET]",
		Short: "Print the last lines of the logs (all apps, an app, or an instance id), merged by time; --follow for new lines",
		Long: `Print the last lines of the logs of all apps, an app, or an instance id.

Lines of apps whose logs carry times (time, log_date_format, log_type "json") are merged across
files in the order they were written; files without times are printed first, file after file.
--timestamp prefixes each line with the time it was written (for --follow lines of files without
times, the time they were read), in a moment.js FORMAT (default ` + config.DefaultLogDateFormat + `):
--timestamp, or --timestamp=FORMAT.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if lines < 0 {
				return flagErr("lines", fmt.Sprint(lines), fmt.Errorf("must not be negative"))
			}
			if errOnly && outOnly {
				return fmt.Errorf("--err and --out exclude each other; give neither for both")
			}
			stamp := ""
			if cmd.Flags().Changed("timestamp") {
				layout, err := config.MomentLayout(stampFormat)
				if err != nil {
					return flagErr("timestamp", stampFormat, err)
				}
				stamp = layout
			}
			ctx := cmd.Context()
			c, err := e.client(ctx)
			if err != nil {
				return err
			}
			target := "all"
			if len(args) == 1 {
				target = args[0]
			}
			files, err := logFiles(ctx, c, target, !errOnly, !outOnly)
			if err != nil {
				return err
			}
			positions, err := printTails(e.Stdout, files, lines, stamp)
			if err != nil {
				return err
			}
			if !follow {
				return nil
			}
			return followFiles(ctx, e.Stdout, files, positions, stamp)
		},
	}
	cmd.Flags().IntVarP(&lines, "lines", "n", 15, "how many lines to print from the end of each file")
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing new lines")
	cmd.Flags().BoolVar(&errOnly, "err", false, "only the error log")
	cmd.Flags().BoolVar(&outOnly, "out", false, "only the output log")
	cmd.Flags().StringVar(&stampFormat, "timestamp", "", "prefix each line with the time it was written, in this moment.js format")
	cmd.Flags().Lookup("timestamp").NoOptDefVal = config.DefaultLogDateFormat
	return cmd
}

type logFile struct {
	path, label string
	format      logs.LineFormat // how its lines carry their time
}

// printTails prints the last lines of each file and returns where each stopped. Files whose
// lines carry no time come first, each under its own header, as they are; the lines of the
// others are merged by time under one header naming them all. With stamp (a Go layout) each
// line whose time is known is prefixed with it.
func printTails(w io.Writer, files []logFile, lines int, stamp string) ([]logs.Position, error) {
	positions := make([]logs.Position, len(files))
	var timed []int // indexes into files
	var sources [][]logs.Entry
	for i, f := range files {
		// The last lines span the rotated files (path.1, ...) when the live one holds fewer.
		tail, pos, err := logs.Tail(f.path, lines)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		positions[i] = pos
		if f.format.Layout != "" {
			timed = append(timed, i)
			sources = append(sources, logs.Entries(i, tail, f.format))
			continue
		}
		fmt.Fprintf(w, "==> %s <==\n", f.path)
		for _, l := range tail {
			fmt.Fprintf(w, "%s | %s\n", f.label, l)
		}
	}
	if len(timed) == 0 {
		return positions, nil
	}
	var names []string
	for _, i := range timed {
		names = append(names, files[i].path)
	}
	if len(timed) == 1 {
		fmt.Fprintf(w, "==> %s <==\n", names[0])
	} else {
		fmt.Fprintf(w, "==> merged by time: %s <==\n", strings.Join(names, ", "))
	}
	for _, e := range logs.Merge(sources...) {
		fmt.Fprintf(w, "%s%s | %s\n", stampOf(stamp, e.Time), files[e.Source].label, e.Text)
	}
	return positions, nil
}

// stampOf is t in layout and a space, "" without a layout; an unknown time is a "-".
func stampOf(layout string, t time.Time) string {
	switch {
	case layout == "":
		return ""
	case t.IsZero():
		return "- "
	}
	return t.Format(layout) + " "
}

func logFiles(ctx context.Context, c *api.Client, target string, out, errs bool) ([]logFile, error) {
	rows, err := targetRows(ctx, c, target)
	if err != nil {
		return nil, err
	}
	var files []logFile
	seen := map[string]bool{}
	for _, r := range rows {
		label := fmt.Sprintf("%d %s", r.ID, r.Name)
		format := logs.LineFormat{Layout: r.LogTime, JSON: r.LogType == config.LogTypeJSON}
		if out && !seen[r.OutLog] {
			files = append(files, logFile{r.OutLog, label, format})
			seen[r.OutLog] = true
		}
		if errs && !seen[r.ErrLog] {
			files = append(files, logFile{r.ErrLog, label + " (err)", format})
			seen[r.ErrLog] = true
		}
	}
	return files, nil
}

// targetRows are the instances TARGET names: all of them, an app's, or one instance id's. An
// unknown target is the daemon's not-found error.
func targetRows(ctx context.Context, c *api.Client, target string) ([]api.Instance, error) {
	if target == "all" {
		return c.List(ctx)
	}
	info, err := c.Info(ctx, target)
	if err != nil {
		return nil, err
	}
	rows := info.Instances
	if id, ok := parseID(target); ok {
		rows = nil
		for _, r := range info.Instances {
			if r.ID == id {
				rows = append(rows, r)
			}
		}
	}
	return rows, nil
}

func parseID(s string) (int, bool) {
	var n int
	if _, err := fmt.Sscanf(s, "%d", &n); err != nil || fmt.Sprint(n) != s {
		return 0, false
	}
	return n, true
}

// followFiles prints what is appended to the files, from where Tail stopped, until ctx ends.
// logs.FollowFrom goes on across rotations (reading what it had not printed yet from the new
// rotated file), truncations (flush) and recreations. Lines of different files come in the
// order they are read (every followPoll).
func followFiles(ctx context.Context, w io.Writer, files []logFile, positions []logs.Position, stamp string) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var mu sync.Mutex // one line at a time on w
	errs := make(chan error, len(files))
	for i, f := range files {
		lw := &lineWriter{w: w, mu: &mu, label: f.label, format: f.format, stamp: stamp}
		go func() {
			err := logs.FollowFrom(ctx, f.path, positions[i], lw, followPoll)
			if err != nil {
				cancel()
			}
			errs <- err
		}()
	}
	var first error
	for range files {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return first
}

// followPoll is how often --follow looks at the files.
const followPoll = 200 * time.Millisecond

// lineWriter prints each complete line written to it as "label | line", after its time in
// stamp when stamp is set (the time it carries, else now); an unterminated line waits for its
// end.
type lineWriter struct {
	w       io.Writer
	mu      *sync.Mutex
	label   string
	format  logs.LineFormat
	stamp   string
	partial []byte
}

func (l *lineWriter) Write(p []byte) (int, error) {
	data := append(l.partial, p...)
	var out bytes.Buffer
	for {
		j := bytes.IndexByte(data, '\n')
		if j < 0 {
			break
		}
		line := data[:j]
		if l.stamp != "" {
			t, ok := l.format.TimeOf(string(line))
			if !ok {
				t = time.Now()
			}
			out.WriteString(stampOf(l.stamp, t))
		}
		fmt.Fprintf(&out, "%s | %s\n", l.label, line)
		data = data[j+1:]
	}
	l.partial = append(l.partial[:0:0], data...)
	if out.Len() == 0 {
		return len(p), nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, err := l.w.Write(out.Bytes()); err != nil {
		return 0, err
	}
	return len(p), nil
}
