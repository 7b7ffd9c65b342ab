// Package home names the files of a PMDAEMON_HOME and the binaries pmdaemon is made of. It is
// shared by the CLI and the daemon, and imports nothing of either: the CLI links it without
// linking the daemon.
package home

import (
	"os"
	"path/filepath"
	"strconv"
)

// Dir is $PMDAEMON_HOME (made absolute) or ~/.pmdaemon.
func Dir() string {
	if h := os.Getenv("PMDAEMON_HOME"); h != "" {
		if abs, err := filepath.Abs(h); err == nil {
			return abs
		}
		return h
	}
	home, err := os.UserHomeDir()
	if err != nil {
		home = "/tmp"
	}
	return filepath.Join(home, ".pmdaemon")
}

// Paths are the files of a PMDAEMON_HOME.
type Paths struct{ Home string }

func (p Paths) Socket() string { return filepath.Join(p.Home, "daemon.sock") }
func (p Paths) Pid() string    { return filepath.Join(p.Home, "daemon.pid") }
func (p Paths) Lock() string   { return filepath.Join(p.Home, "daemon.lock") }
func (p Paths) Log() string    { return filepath.Join(p.Home, "daemon.log") }
func (p Paths) State() string  { return filepath.Join(p.Home, "state.json") }
func (p Paths) Dump() string   { return filepath.Join(p.Home, "dump.json") }
func (p Paths) LogDir() string { return filepath.Join(p.Home, "logs") }
func (p Paths) Web() string    { return filepath.Join(p.Home, "web.json") }
func (p Paths) OutLog(app string, i int) string {
	return filepath.Join(p.LogDir(), app+"-"+strconv.Itoa(i)+"-out.log")
}
func (p Paths) ErrLog(app string, i int) string {
	return filepath.Join(p.LogDir(), app+"-"+strconv.Itoa(i)+"-err.log")
}

// MergedLog is the one out or err log of all of an app's instances (merge_logs).
func (p Paths) MergedLog(app, stream string) string {
	return filepath.Join(p.LogDir(), app+"-"+stream+".log")
}
