package config

import (
	"fmt"
	"path/filepath"
	"strconv"
)

// DefaultNamespace is the namespace of an app that names none, as in PM2: `restart default`
// restarts every such app.
const DefaultNamespace = "default"

// NamespaceOf is the namespace the app is in.
func (a App) NamespaceOf() string {
	if a.Namespace == "" {
		return DefaultNamespace
	}
	return a.Namespace
}

// checkPM2Keys validates namespace and pid_file. A namespace is typed as a TARGET, so it
// follows the rules of app names: a number would be taken for an instance id, "all" for
// every app.
func (a *App) checkPM2Keys(bad func(key, format string, x ...any) error) error {
	if a.Namespace != "" {
		if err := checkTargetName("namespace", a.Namespace); err != nil {
			return bad("namespace", "%v", err)
		}
	}
	if a.PidFile != "" {
		if err := checkPidFile(a.PidFile); err != nil {
			return bad("pid_file", "%v", err)
		}
	}
	return nil
}

func checkPidFile(p string) error {
	base := filepath.Base(p)
	if base == "." || base == ".." || base == "/" || p[len(p)-1] == '/' {
		return fmt.Errorf("pid_file %q names a directory; give a file name such as web.pid", p)
	}
	for _, r := range p {
		if invisible(r) {
			return fmt.Errorf("pid_file %q contains the control character %s", p, runeName(r))
		}
	}
	return nil
}

// pidSuffix is what PM2 replaces with -<id>.pid: a trailing -<digits>.pid or .pid.
var pidSuffix = lazyRegexp(`(-[0-9]+)?\.pid$`)

// PidFileOf is the pid file of instance index of an app whose pid_file is pattern, in cwd:
// PM2's rule, a name ending in .pid (or -N.pid) gets -N.pid, any other name is every
// instance's. PM2 numbers by its pm_id; pmdaemon by the index, which a restart or a reload
// keeps.
func PidFileOf(pattern, cwd string, index int) string {
	if pattern == "" {
		return ""
	}
	if !filepath.IsAbs(pattern) {
		pattern = filepath.Join(cwd, pattern)
	}
	if loc := pidSuffix().FindStringIndex(pattern); loc != nil {
		return pattern[:loc[0]] + "-" + strconv.Itoa(index) + ".pid"
	}
	return pattern
}
