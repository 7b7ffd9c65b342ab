package cli

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/pmdaemon/pmdaemon/host/api"
	"github.com/pmdaemon/pmdaemon/host/config"
)

// runKeyLines adds to info what the PM2 run keys set (env_file, cron_restart,
// stop_exit_codes, watch), only those that are set.
func runKeyLines(c api.AppConfig, line func(k, v string)) {
	if len(c.EnvFile) > 0 {
		line("env file", strings.Join(c.EnvFile, ", ")+" (env overrides)")
	}
	if c.CronRestart != "" {
		line("cron restart", c.CronRestart)
	}
	if len(c.StopExitCodes) > 0 {
		codes := make([]string, len(c.StopExitCodes))
		for i, n := range c.StopExitCodes {
			codes[i] = strconv.Itoa(n)
		}
		line("stop exit codes", strings.Join(codes, ", ")+" (not restarted)")
	}
	if len(c.Watch) > 0 {
		what := strings.Join(c.Watch, ", ")
		if len(c.IgnoreWatch) > 0 {
			what += ", ignoring " + strings.Join(c.IgnoreWatch, ", ")
		}
		cfg := c.Config()
		line("watch", fmt.Sprintf("%s (never %s); restart after %s quiet", what,
			strings.Join(config.WatchIgnoredByDefault, ", "), cfg.Debounce()))
	}
}
