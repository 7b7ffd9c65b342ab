package cli

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/pmdaemon/pmdaemon/host/config"
)

// importCmd is `pmdaemon import pm2`: PM2's process list made into an ecosystem file, so the
// apps PM2 runs today can move. It reads and writes files only; no daemon is involved.
func (e *Env) importCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "import",
		Short: "Make an ecosystem file from another process manager's apps (pm2)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return errors.New("import what? pmdaemon import pm2 [DUMP] [-o FILE]")
		},
	}
	var out string
	var force bool
	pm2 := &cobra.Command{
		Use:   "pm2 [DUMP]",
		Short: "Write an ecosystem file of PM2's apps, from dump.pm2 (default $PM2_HOME/dump.pm2, ~/.pm2/dump.pm2) or `pm2 jlist` output (- for stdin)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			src := defaultPM2Dump()
			if len(args) == 1 {
				src = args[0]
			}
			data, err := readDump(src, cmd.InOrStdin())
			if err != nil {
				return err
			}
			imp, err := config.ImportPM2(data, src, environMap())
			if err != nil {
				return err
			}
			tell := func() {
				for _, d := range imp.Dropped {
					fmt.Fprintf(e.Stderr, "[pmdaemon] import: %s\n", d)
				}
			}
			if out == "" || out == "-" {
				tell()
				_, err := e.Stdout.Write(imp.File)
				return err
			}
			if err := writeNew(out, imp.File, force); err != nil {
				return err
			}
			tell()
			fmt.Fprintf(e.Stderr, "[pmdaemon] import: wrote %d app%s (%s) to %s; start them with: pmdaemon run %s\n",
				len(imp.Apps), plural(len(imp.Apps)), strings.Join(imp.Apps, ", "), out, out)
			return nil
		},
	}
	pm2.Flags().StringVarP(&out, "output", "o", "", "write the ecosystem file here (default: stdout)")
	pm2.Flags().BoolVar(&force, "force", false, "replace the output file if it exists")
	cmd.AddCommand(pm2)
	return cmd
}

// defaultPM2Dump is where PM2 saves its list: $PM2_HOME/dump.pm2, PM2_HOME being ~/.pm2 by
// default.
func defaultPM2Dump() string {
	if h := os.Getenv("PM2_HOME"); h != "" {
		return filepath.Join(h, "dump.pm2")
	}
	home, err := os.UserHomeDir()
	if err != nil {
		home = "/root"
	}
	return filepath.Join(home, ".pm2", "dump.pm2")
}

// readDump reads PM2's list from path ("-": in), bounded as an ecosystem file is.
func readDump(path string, in io.Reader) ([]byte, error) {
	r := in
	if path != "-" {
		f, err := os.Open(path)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%s does not exist: give PM2's dump.pm2 (`pm2 save` writes it) or a file of `pm2 jlist` output", path)
		}
		if err != nil {
			return nil, err
		}
		defer f.Close()
		if st, err := f.Stat(); err == nil && st.IsDir() {
			return nil, fmt.Errorf("%s is a directory: give PM2's dump.pm2 or a file of `pm2 jlist` output", path)
		}
		r = f
	}
	data, err := io.ReadAll(io.LimitReader(r, config.MaxEcosystemSize+1))
	if err != nil {
		return nil, fmt.Errorf("cannot read %s: %w", path, err)
	}
	if len(data) > config.MaxEcosystemSize {
		return nil, fmt.Errorf("%s is larger than %d MiB; PM2's list of processes is not", path, config.MaxEcosystemSize>>20)
	}
	return data, nil
}

// environMap is this process's environment by name.
func environMap() map[string]string {
	m := map[string]string{}
	for _, kv := range os.Environ() {
		if k, v, ok := strings.Cut(kv, "="); ok && k != "" {
			m[k] = v
		}
	}
	return m
}

// writeNew writes data to path, which must not exist unless force: an existing file is never
// replaced by surprise.
func writeNew(path string, data []byte, force bool) error {
	flags := os.O_WRONLY | os.O_CREATE | os.O_EXCL
	if force {
		flags = os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	}
	f, err := os.OpenFile(path, flags, 0o644)
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("%s exists; pass --force to replace it, or -o another file", path)
	}
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("cannot write %s: %w", path, err)
	}
	return nil
}
