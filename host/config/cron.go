package config

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/robfig/cron/v3"
)

// CronParser reads cron_restart as PM2 does: five fields, or six with seconds first, and the
// descriptors (@daily, @every 1h).
var CronParser = cron.NewParser(cron.SecondOptional | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// ParseCron parses a cron_restart expression; the error names the key and the expression.
func ParseCron(expr string) (cron.Schedule, error) {
	s, err := CronParser.Parse(expr)
	if err != nil {
		return nil, fmt.Errorf("cron_restart %q is not a cron expression: %v (use 5 fields like \"0 3 * * *\", 6 with seconds first, or @daily, @every 1h)", expr, err)
	}
	return s, nil
}

// checkRunKeys validates the keys of how an app runs: cron_restart, stop_exit_codes and the
// watch keys.
func (a *App) checkRunKeys(bad func(key, format string, x ...any) error) error {
	if a.CronRestart != "" {
		if _, err := ParseCron(a.CronRestart); err != nil {
			return bad("cron_restart", "%v", err)
		}
	}
	for _, c := range a.StopExitCodes {
		if c < 0 || c > 255 {
			return bad("stop_exit_codes", "stop_exit_codes: %d is not an exit code (0-255)", c)
		}
	}
	for i, f := range a.EnvFile {
		if strings.TrimSpace(f) == "" {
			return bad("env_file", "env_file[%d] is empty", i)
		}
	}
	for i, p := range a.Watch {
		if strings.TrimSpace(p) == "" {
			return bad("watch", "watch[%d] is an empty path", i)
		}
	}
	for _, g := range a.IgnoreWatch {
		if _, err := filepath.Match(g, ""); err != nil {
			return bad("ignore_watch", "ignore_watch %q is not a valid glob: %v", g, err)
		}
	}
	if a.WatchDelay < 0 {
		return bad("watch_delay", "watch_delay must not be negative, got %s", a.WatchDelay)
	}
	return nil
}
