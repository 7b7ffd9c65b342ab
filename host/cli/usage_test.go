package cli_test

import (
	"strings"
	"testing"
)

// Bad command lines are refused before any daemon is asked: exit 1, one "Error: " line on
// stderr that names the flag, value or command at fault, nothing on stdout. The home stays
// empty (no daemon was spawned; TestMain would fail one) and nothing is left running.
func TestUsageErrorsNameWhatIsWrong(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want []string // each must appear in stderr
	}{
		{"unknown flag", []string{"list", "--bogus"}, []string{"unknown flag: --bogus"}},
		{"unknown shorthand flag", []string{"start", "sleep", "-z"}, []string{"unknown shorthand flag: 'z' in -z"}},
		{"port out of range", []string{"start", "sleep 1", "--port", "70000"}, []string{`invalid port spec "70000"`}},
		{"port range backwards", []string{"start", "sleep 1", "--port", "3005-3000"}, []string{`invalid port spec "3005-3000"`}},
		{"port not a number", []string{"restart", "web", "--port", "http"}, []string{`invalid port spec "http"`}},
		{"bad duration", []string{"start", "sleep 1", "--kill-timeout", "5x"}, []string{`invalid value "5x" for --kill-timeout`}},
		{"negative duration", []string{"start", "sleep 1", "--min-uptime", "-1s"}, []string{`invalid value "-1s" for --min-uptime`, "negative"}},
		{"zero wait timeout", []string{"restart", "web", "--wait-timeout", "0s"}, []string{`invalid value "0s" for --wait-timeout`, "positive"}},
		{"bad instances", []string{"start", "sleep 1", "-i", "many"}, []string{`invalid value "many" for --instances`}},
		{"env without =", []string{"start", "sleep 1", "-e", "FOO"}, []string{`invalid value "FOO" for --env`, "NAME=VALUE"}},
		{"health flag without check", []string{"start", "sleep 1", "--health-retries", "2"}, []string{"--health-retries needs --health-url or --health-script"}},
		{"int flag not a number", []string{"start", "sleep 1", "--max-restarts", "lots"}, []string{`invalid argument "lots" for "--max-restarts"`}},
		{"start without CMD", []string{"start"}, []string{"requires at least 1 arg(s), only received 0"}},
		{"stop without target", []string{"stop"}, []string{"stop takes one TARGET", "got 0 arguments"}},
		{"delete with two targets", []string{"delete", "a", "b"}, []string{"delete takes one TARGET", "got 2 arguments"}},
		{"list with an argument", []string{"list", "web"}, []string{`unknown command "web" for "pmdaemon list"`}},
		{"start two CMDs", []string{"start", "sleep", "1"}, []string{"start takes one CMD"}},
		{"unknown command suggests", []string{"lst"}, []string{`unknown command "lst" for "pmdaemon"`, "Did you mean this?", "\tlist"}},
		{"unknown command far from any", []string{"frobnicate"}, []string{`unknown command "frobnicate" for "pmdaemon"`}},
		{"startup bad stop timeout", []string{"startup", "--stop-timeout", "soon"}, []string{`invalid value "soon" for --stop-timeout`}},
	}
	newHome(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := pmd(tt.args...)
			if r.code != 1 {
				t.Errorf("exit %d, want 1\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
			}
			if r.stdout != "" {
				t.Errorf("stdout is not empty: %q", r.stdout)
			}
			if !strings.HasPrefix(r.stderr, "Error: ") {
				t.Errorf("stderr does not start with \"Error: \": %q", r.stderr)
			}
			for _, w := range tt.want {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("stderr %q does not mention %q", r.stderr, w)
				}
			}
		})
	}
	// A suggestion is offered only for a near miss.
	if r := pmd("frobnicate"); strings.Contains(r.stderr, "Did you mean") {
		t.Errorf("a far-off command got a suggestion: %q", r.stderr)
	}
}

// Help is printed on stdout, exits 0 and needs no daemon: the root lists every command, a
// command's help lists its flags with their defaults.
func TestUsageHelpListsCommandsAndFlags(t *testing.T) {
	tests := []struct {
		args []string
		want []string
	}{
		{[]string{"--help"}, []string{"Usage:", "pmdaemon [command]", "start", "stop", "restart", "reload", "delete", "list", "info", "logs", "save", "resurrect", "ping", "kill", "daemon", "run", "plugin", "startup", "flush"}},
		{[]string{"help"}, []string{"Usage:", "Available Commands:"}},
		{[]string{}, []string{"Usage:", "Available Commands:"}},
		{[]string{"start", "--help"}, []string{"pmdaemon start CMD [flags] [-- ARGS...]", "--port", "auto:5000-5100", `--kill-timeout string`, `(default "5s")`, "--health-url"}},
		{[]string{"help", "restart"}, []string{"pmdaemon restart TARGET", "--port", "--wait-ready"}},
		{[]string{"reload", "-h"}, []string{"pmdaemon reload TARGET", "--instances"}},
		{[]string{"list", "--help"}, []string{"Aliases:", "list, ls", "--json"}},
	}
	newHome(t)
	for _, tt := range tests {
		t.Run(strings.Join(append([]string{"pmdaemon"}, tt.args...), " "), func(t *testing.T) {
			r := pmd(tt.args...)
			if r.code != 0 || r.stderr != "" {
				t.Fatalf("exit %d, stderr %q; want 0 and nothing", r.code, r.stderr)
			}
			for _, w := range tt.want {
				if !strings.Contains(r.stdout, w) {
					t.Errorf("help does not mention %q:\n%s", w, r.stdout)
				}
			}
		})
	}
	// reload has no --wait-ready of its own (it always waits); its help must not offer one.
	if out := pmd("reload", "--help").stdout; strings.Contains(out, "--wait-ready") {
		t.Errorf("reload --help offers --wait-ready:\n%s", out)
	}
}
