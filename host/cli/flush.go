package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/spf13/cobra"

	"github.com/pmdaemon/pmdaemon/host/logs"
)

// flushCmd empties log files. It needs nothing new of the daemon: the paths come from list or
// info, and the files are emptied here (apps keep writing to them through O_APPEND descriptors,
// so they go on at the new end).
func (e *Env) flushCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "flush [TARGET]",
		Short: "Empty the log files, rotated ones included, of all apps (default), an app, or an instance id",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			c, err := e.client(ctx)
			if err != nil {
				return err
			}
			target := "all"
			if len(args) == 1 {
				target = args[0]
			}
			rows, err := targetRows(ctx, c, target)
			if err != nil {
				return err
			}
			// Per app, in list order, each file once (out and err may be one file, and apps may
			// share a file).
			var apps []string
			paths := map[string][]string{}
			seen := map[string]bool{}
			for _, r := range rows {
				if _, ok := paths[r.Name]; !ok {
					apps = append(apps, r.Name)
					paths[r.Name] = nil
				}
				for _, p := range []string{r.OutLog, r.ErrLog, r.LogFile} {
					if p != "" && !seen[p] {
						seen[p] = true
						paths[r.Name] = append(paths[r.Name], p)
					}
				}
			}
			if len(apps) == 0 {
				fmt.Fprintln(e.Stdout, "[pmdaemon] no app, no log to flush")
				return nil
			}
			var errs []error
			for _, app := range apps {
				n, failed := 0, false
				for _, p := range paths[app] {
					files, err := logFileCount(p)
					if err == nil {
						err = logs.Flush(p)
					}
					if err != nil {
						errs, failed = append(errs, err), true
						continue
					}
					n += files
				}
				if failed {
					continue // the errors say what happened
				}
				fmt.Fprintf(e.Stdout, "[pmdaemon] flushed logs of %s (%d file%s)\n", app, n, plural(n))
			}
			return errors.Join(errs...)
		},
	}
}

// logFileCount is how many files a flush of the log at path empties or removes: the live file
// and its rotated ones.
func logFileCount(path string) (int, error) {
	n := 0
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode().IsRegular() {
			n++
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return 0, fmt.Errorf("cannot flush log: %w", err)
	}
	rotated, err := logs.Rotated(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return 0, fmt.Errorf("cannot flush the rotated logs of %s: %w", path, err)
	}
	return n + len(rotated), nil
}
