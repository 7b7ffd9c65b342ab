package cli

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/pmdaemon/pmdaemon/host/api"
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
			offsets := make([]int64, len(files))
			for i, f := range files {
				fmt.Fprintf(e.Stdout, "==> %s <==\n", f.path)
				tail, end, err := tailFile(f.path, lines)
				if err != nil && !os.IsNotExist(err) {
					return err
				}
				for _, l := range tail {
					fmt.Fprintf(e.Stdout, "%s | %s\n", f.label, l)
				}
				offsets[i] = end
			}
			if !follow {
				return nil
			}
			return followFiles(ctx, e.Stdout, files, offsets)
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
	var rows []api.Instance
	if target == "all" {
		var err error
		if rows, err = c.List(ctx); err != nil {
			return nil, err
		}
	} else {
		info, err := c.Info(ctx, target)
		if err != nil {
			return nil, err
		}
		rows = info.Instances
		if id, ok := parseID(target); ok {
			rows = nil
			for _, r := range info.Instances {
				if r.ID == id {
					rows = append(rows, r)
				}
			}
		}
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

func parseID(s string) (int, bool) {
	var n int
	if _, err := fmt.Sscanf(s, "%d", &n); err != nil || fmt.Sprint(n) != s {
		return 0, false
	}
	return n, true
}

// tailFile returns the last n lines of path and the file's size, reading backwards in blocks so a
// large log costs only what is printed.
func tailFile(path string, n int) ([]string, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, 0, err
	}
	size := st.Size()
	if n == 0 {
		return nil, size, nil
	}
	const block = 64 << 10
	var buf []byte
	pos := size
	for pos > 0 && bytes.Count(buf, []byte{'\n'}) <= n {
		step := min(int64(block), pos)
		pos -= step
		chunk := make([]byte, step)
		if _, err := f.ReadAt(chunk, pos); err != nil && err != io.EOF {
			return nil, 0, err
		}
		buf = append(chunk, buf...)
	}
	text := bytes.TrimSuffix(buf, []byte{'\n'})
	if len(text) == 0 {
		return nil, size, nil
	}
	all := bytes.Split(text, []byte{'\n'})
	if len(all) > n {
		all = all[len(all)-n:]
	}
	out := make([]string, len(all))
	for i, l := range all {
		out[i] = string(l)
	}
	return out, size, nil
}

// followFiles prints what is appended to the files until ctx ends. A file that shrank was
// flushed or rotated; it is read again from its start.
func followFiles(ctx context.Context, w io.Writer, files []logFile, offsets []int64) error {
	partial := make([][]byte, len(files))
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		for i, f := range files {
			st, err := os.Stat(f.path)
			if err != nil {
				continue
			}
			if st.Size() < offsets[i] {
				offsets[i] = 0
			}
			if st.Size() == offsets[i] {
				continue
			}
			fh, err := os.Open(f.path)
			if err != nil {
				continue
			}
			data := make([]byte, st.Size()-offsets[i])
			n, _ := fh.ReadAt(data, offsets[i])
			fh.Close()
			offsets[i] += int64(n)
			data = append(partial[i], data[:n]...)
			for {
				j := bytes.IndexByte(data, '\n')
				if j < 0 {
					break
				}
				fmt.Fprintf(w, "%s | %s\n", f.label, data[:j])
				data = data[j+1:]
			}
			partial[i] = data
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
