package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/pmdaemon/pmdaemon/host/api"
	"github.com/pmdaemon/pmdaemon/host/logs"
)

func (e *Env) logsCmd() *cobra.Command {
	var lines int
	var follow, errOnly, outOnly bool
	cmd := &cobra.Command{
		Use:   "logs [TARGET]",
		Short: "Print the last lines of the logs (all apps, an app, or an instance id); --follow for new lines",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if lines < 0 {
				return flagErr("lines", fmt.Sprint(lines), fmt.Errorf("must not be negative"))
			}
			if errOnly && outOnly {
				return fmt.Errorf("--err and --out exclude each other; give neither for both")
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
			positions := make([]logs.Position, len(files))
			for i, f := range files {
				fmt.Fprintf(e.Stdout, "==> %s <==\n", f.path)
				// The last lines span the rotated files (path.1, ...) when the live one holds fewer.
				tail, pos, err := logs.Tail(f.path, lines)
				if err != nil && !errors.Is(err, fs.ErrNotExist) {
					return err
				}
				for _, l := range tail {
					fmt.Fprintf(e.Stdout, "%s | %s\n", f.label, l)
				}
				positions[i] = pos
			}
			if !follow {
				return nil
			}
			return followFiles(ctx, e.Stdout, files, positions)
		},
	}
	cmd.Flags().IntVarP(&lines, "lines", "n", 15, "how many lines to print from the end of each file")
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing new lines")
	cmd.Flags().BoolVar(&errOnly, "err", false, "only the error log")
	cmd.Flags().BoolVar(&outOnly, "out", false, "only the output log")
	return cmd
}

type logFile struct{ path, label string }

func logFiles(ctx context.Context, c *api.Client, target string, out, errs bool) ([]logFile, error) {
	rows, err := targetRows(ctx, c, target)
	if err != nil {
		return nil, err
	}
	var files []logFile
	seen := map[string]bool{}
	for _, r := range rows {
		label := fmt.Sprintf("%d %s", r.ID, r.Name)
		if out && !seen[r.OutLog] {
			files = append(files, logFile{r.OutLog, label})
			seen[r.OutLog] = true
		}
		if errs && !seen[r.ErrLog] {
			files = append(files, logFile{r.ErrLog, label + " (err)"})
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
// rotated file), truncations (flush) and recreations.
func followFiles(ctx context.Context, w io.Writer, files []logFile, positions []logs.Position) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var mu sync.Mutex // one line at a time on w
	errs := make(chan error, len(files))
	for i, f := range files {
		lw := &lineWriter{w: w, mu: &mu, label: f.label}
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

// lineWriter prints each complete line written to it as "label | line"; an unterminated
// line waits for its end.
type lineWriter struct {
	w       io.Writer
	mu      *sync.Mutex
	label   string
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
		fmt.Fprintf(&out, "%s | %s\n", l.label, data[:j])
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
