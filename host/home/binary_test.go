package home

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The CLI finds its daemon: $PMDAEMON_DAEMON first, then beside the CLI's real path (a
// symlink to pmdaemon elsewhere still finds the daemon beside the real one), then PATH; and
// when there is none, the error names the binary, where it looked and how to install it.
func TestDaemonBinary(t *testing.T) {
	root := t.TempDir()
	exe := func(dir, name string, mode os.FileMode) string {
		t.Helper()
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("#!/bin/sh\n"), mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	install := filepath.Join(root, "install")
	cliReal := exe(install, "pmdaemon", 0o755)
	daemonReal := exe(install, DaemonName, 0o755)
	links := filepath.Join(root, "links")
	os.MkdirAll(links, 0o755)
	cliLink := filepath.Join(links, "pmdaemon")
	if err := os.Symlink(cliReal, cliLink); err != nil {
		t.Fatal(err)
	}
	lonely := exe(filepath.Join(root, "lonely"), "pmdaemon", 0o755)
	onPath := filepath.Join(root, "path")
	daemonOnPath := exe(onPath, DaemonName, 0o755)
	notExec := exe(filepath.Join(root, "noexec"), DaemonName, 0o644)
	empty := filepath.Join(root, "empty")
	os.MkdirAll(empty, 0o755)
	// A pmdaemond beside the CLI that is the CLI (a multi-call style link): never the daemon.
	selfDir := filepath.Join(root, "self")
	selfCLI := exe(selfDir, "pmdaemon", 0o755)
	if err := os.Symlink(selfCLI, filepath.Join(selfDir, DaemonName)); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name, cli, env, path string
		want                 string   // the binary found; "" when an error is wanted
		errs                 []string // what the error must say
	}{
		{name: "beside", cli: cliReal, path: empty, want: daemonReal},
		{name: "beside the real path of a symlink", cli: cliLink, path: empty, want: daemonReal},
		{name: "beside wins over PATH", cli: cliReal, path: onPath, want: daemonReal},
		{name: "PATH when not beside", cli: lonely, path: onPath, want: daemonOnPath},
		{name: "the environment wins", cli: cliReal, env: daemonOnPath, path: empty, want: daemonOnPath},
		{name: "nowhere", cli: lonely, path: empty,
			errs: []string{"pmdaemond is not beside " + lonely + " nor on PATH", "go install github.com/pmdaemon/pmdaemon/cmd/...@latest", DaemonEnv}},
		{name: "the environment names a missing file", cli: cliReal, env: filepath.Join(empty, "nope"), path: empty,
			errs: []string{DaemonEnv + "=", "nope", "no such file"}},
		{name: "the environment names a file that is not executable", cli: cliReal, env: notExec, path: empty,
			errs: []string{notExec, "is not executable"}},
		{name: "the environment names a directory", cli: cliReal, env: empty, path: empty,
			errs: []string{"is a directory"}},
		{name: "the environment names the CLI", cli: cliLink, env: cliReal, path: empty,
			errs: []string{DaemonEnv + "=", "is " + cliReal + " itself, the CLI", "name pmdaemond"}},
		{name: "a pmdaemond beside that is the CLI", cli: selfCLI, path: empty,
			errs: []string{"beside " + selfCLI + " (" + filepath.Join(selfDir, DaemonName) + " is " + selfCLI + " itself, the CLI"}},
		{name: "a pmdaemond beside that is the CLI, and one on PATH", cli: selfCLI, path: onPath, want: daemonOnPath},
		{name: "not executable beside, nothing on PATH", cli: filepath.Join(root, "noexec", "pmdaemon"), path: empty,
			errs: []string{"(" + notExec + " is not executable)", "nor on PATH"}},
		{name: "not executable beside is skipped", cli: filepath.Join(root, "noexec", "pmdaemon"), path: onPath, want: daemonOnPath},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(DaemonEnv, tt.env)
			t.Setenv("PATH", tt.path)
			got, err := DaemonBinary(tt.cli)
			if tt.want != "" {
				if err != nil || got != tt.want {
					t.Fatalf("DaemonBinary(%s) = %q, %v; want %q", tt.cli, got, err, tt.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("DaemonBinary(%s) = %q, want an error", tt.cli, got)
			}
			for _, w := range tt.errs {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}
