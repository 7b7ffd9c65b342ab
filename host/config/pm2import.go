package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// PM2Import is an ecosystem file made from PM2's process list (`pmdaemon import pm2`).
type PM2Import struct {
	// File is the ecosystem file, JSON: {"apps": [...]}, one app per PM2 app name.
	File []byte
	// Apps are the names of its apps, in PM2's order.
	Apps []string
	// Dropped says what PM2 had that the file does not carry, one line per kind.
	Dropped []string
}

// ImportPM2 turns PM2's process list into an ecosystem file pmdaemon runs. data is PM2's
// dump.pm2 (what `pm2 save` writes: each process's pm2_env, with its env flattened into it)
// or the output of `pm2 jlist` (each process as {pid, name, pm_id, monit, pm2_env}); file
// names it in errors. here is the environment `pmdaemon import` runs in: a variable PM2
// recorded with the same value here is taken for one the shell that ran PM2 had, not one the
// user set for the app (see userEnv).
func ImportPM2(data []byte, file string, here map[string]string) (*PM2Import, error) {
	procs, err := pm2Processes(data, file)
	if err != nil {
		return nil, err
	}
	imp := &pm2Importer{file: file, here: here, drops: map[string][]string{}}
	procs = slices.DeleteFunc(procs, func(p pm2Proc) bool {
		if p["pmx_module"] == true { // `pm2 jlist` lists them; dump.pm2 does not
			imp.drop(dropModules, p.str("name"))
			return true
		}
		return false
	})
	if len(procs) == 0 {
		return nil, fmt.Errorf("%s lists only PM2 modules (%s), no apps", file, strings.Join(imp.drops[dropModules], ", "))
	}
	var apps []any
	var names []string
	for _, group := range groupPM2(procs) {
		app, err := imp.app(group)
		if err != nil {
			return nil, err
		}
		apps = append(apps, app)
		names = append(names, group.name)
	}
	out, err := json.Marshal(orderedObject{{"apps", apps}})
	if err != nil {
		return nil, fmt.Errorf("%s: %v", file, err)
	}
	var b bytes.Buffer
	if err := json.Indent(&b, out, "", "  "); err != nil {
		return nil, err
	}
	b.WriteByte('\n')
	// The file must load as it is: a name pmdaemon refuses (a number, "all") or a value it
	// cannot read is an error now, naming the app, not at `run`.
	if _, err := ParseEcosystem(b.Bytes(), "the ecosystem file made of it", "/"); err != nil {
		return nil, fmt.Errorf("%s cannot be imported as it is: %w", file, err)
	}
	return &PM2Import{File: b.Bytes(), Apps: names, Dropped: imp.dropped()}, nil
}

// pm2Proc is one process of PM2's list: its pm2_env.
type pm2Proc map[string]any

// pm2Processes reads the list and checks it is PM2's: a non-empty array of process objects
// that each have a name and a pm_exec_path.
func pm2Processes(data []byte, file string) ([]pm2Proc, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("%s is not PM2's process list: %s", file, jsonError(data, err))
	}
	if err := EnsureEOF(dec); err != nil {
		return nil, fmt.Errorf("%s is not PM2's process list: %v", file, err)
	}
	list, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("%s is not PM2's process list: want a JSON array of processes (PM2's dump.pm2 or `pm2 jlist`), got %s", file, typeName(v))
	}
	if len(list) == 0 {
		return nil, fmt.Errorf("%s lists no processes: PM2 saved none (run `pm2 save` while your apps run, or give `pm2 jlist` output)", file)
	}
	var procs []pm2Proc
	for i, x := range list {
		m, ok := x.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%s: [%d] is not a PM2 process: want an object, got %s", file, i, typeName(x))
		}
		if env, ok := m["pm2_env"].(map[string]any); ok {
			m = env // `pm2 jlist`: the rest (pid, pm_id, monit) is the process's state
		}
		for _, k := range []string{"name", "pm_exec_path"} {
			if s, ok := m[k].(string); !ok || s == "" {
				return nil, fmt.Errorf("%s: [%d] is not a PM2 process: it has no %q (want PM2's dump.pm2 or `pm2 jlist` output)", file, i, k)
			}
		}
		procs = append(procs, m)
	}
	return procs, nil
}

// pm2Group is the processes of one app: PM2 lists each instance as a process of its own.
type pm2Group struct {
	name  string
	procs []pm2Proc // by instance number
}

// groupPM2 collapses instances into apps, in the order PM2 lists them. Processes of one name
// that run something else (PM2 lets `pm2 start b.js --name a` join an app a of a.js) become
// an app of their own, named NAME-2, NAME-3, ...
func groupPM2(procs []pm2Proc) []*pm2Group {
	var groups []*pm2Group
	taken := map[string]bool{}
	for _, p := range procs {
		taken[p.str("name")] = true
	}
	for _, p := range procs {
		var into *pm2Group
		for _, g := range groups {
			if g.procs[0].str("name") == p.str("name") && g.procs[0].sameProgram(p) {
				into = g
				break
			}
		}
		if into == nil {
			into = &pm2Group{name: p.str("name")}
			if slices.ContainsFunc(groups, func(g *pm2Group) bool { return g.procs[0].str("name") == into.name }) {
				for n := 2; ; n++ {
					if name := fmt.Sprintf("%s-%d", into.name, n); !taken[name] {
						into.name, taken[name] = name, true
						break
					}
				}
			}
			groups = append(groups, into)
		}
		into.procs = append(into.procs, p)
	}
	for _, g := range groups {
		sort.SliceStable(g.procs, func(i, j int) bool { return g.procs[i].instance() < g.procs[j].instance() })
	}
	return groups
}

func (p pm2Proc) str(k string) string {
	s, _ := p[k].(string)
	return s
}

// instance is the process's instance number (NODE_APP_INSTANCE, or PM2's instance_var).
func (p pm2Proc) instance() int {
	v := p[p.instanceVar()]
	if env, ok := p["env"].(map[string]any); ok && v == nil {
		v = env[p.instanceVar()]
	}
	s, _ := scalarString(v)
	n, _ := strconv.Atoi(s)
	return n
}

func (p pm2Proc) instanceVar() string {
	if v := p.str("instance_var"); v != "" {
		return v
	}
	return "NODE_APP_INSTANCE"
}

func (p pm2Proc) sameProgram(q pm2Proc) bool {
	for _, k := range []string{"pm_exec_path", "pm_cwd", "exec_interpreter", "exec_mode"} {
		if p.str(k) != q.str(k) {
			return false
		}
	}
	a, _ := json.Marshal(p["args"])
	b, _ := json.Marshal(q["args"])
	return bytes.Equal(a, b)
}

// pm2Importer turns groups into apps and gathers what it leaves out, by kind.
type pm2Importer struct {
	file  string
	here  map[string]string
	drops map[string][]string // kind -> what, in the order met
}

// The kinds of what an import leaves out, in the order they are told.
const (
	dropState     = "dropped PM2's state of each process (pmdaemon keeps its own)"
	dropPM2Env    = "dropped env PM2 set itself (its home and mode, process ids, a variable named after each app)"
	dropShellEnv  = "dropped env of the shell session"
	dropInherited = "dropped env inherited from the shell that ran pm2 (the same value here; a daemon started from this shell passes it on)"
	dropLogs      = "dropped PM2's default log files (pmdaemon writes $PMDAEMON_HOME/logs/NAME-INDEX-out.log and -err.log) of"
	dropPids      = "dropped PM2's default pid files (pmdaemon writes pid files only for pid_file) of"
	dropUnused    = "dropped PM2 keys pmdaemon does not act on"
	dropUnknown   = "dropped keys neither PM2's schema nor pmdaemon knows"
	dropStopped   = "stopped under PM2, started by `pmdaemon run` (remove them from the file to keep them off)"
	dropModules   = "dropped PM2 modules (`pm2 install` plugins of PM2, not apps)"
)

var dropOrder = []string{dropState, dropPM2Env, dropShellEnv, dropInherited, dropLogs, dropPids, dropUnused, dropUnknown, dropStopped, dropModules}

func (imp *pm2Importer) drop(kind, what string) {
	if !slices.Contains(imp.drops[kind], what) {
		imp.drops[kind] = append(imp.drops[kind], what)
	}
}

func (imp *pm2Importer) dropped() []string {
	var out []string
	for _, kind := range dropOrder {
		if whats := imp.drops[kind]; len(whats) > 0 {
			out = append(out, kind+": "+strings.Join(whats, ", "))
		}
	}
	return out
}

// pm2State are the keys of a process's pm2_env that describe it running under PM2, not how
// to run it; pm2Derived are those the app's keys are made from.
var (
	pm2State = []string{
		"pm_id", "pid", "monit", "status", "pm_uptime", "created_at", "restart_time", "unstable_restarts",
		"prev_restart_delay", "exit_code", "axm_actions", "axm_monitor", "axm_options", "axm_dynamic", "km_link",
		"vizion_running", "node_version", "version", "versioning", "unique_id", "_pm2_version", "username",
		"pmx_module", "MODULE_DEBUG", "command", "_tree_pids",
	}
	pm2Derived = []string{
		"name", "pm_exec_path", "exec_interpreter", "node_args", "args", "pm_cwd", "cwd", "env", "instances", "exec_mode",
		"pm_out_log_path", "pm_err_log_path", "pm_log_path", "pm_pid_path", "out_file", "error_file", "log_file",
		"pid_file", "merge_logs", "namespace", "instance_var", "script", "port",
	}
	// pm2Defaults are PM2's values of keys pmdaemon does not act on: a process that has them
	// asked for nothing.
	pm2Defaults = map[string]any{
		"vizion": true, "autostart": true, "pmx": true, "automation": true, "treekill": true, "windowsHide": true,
		"kill_retry_time": json.Number("100"), "watch": false,
	}
	// pm2Copied are the keys carried as they are, when set: pmdaemon reads them (as its own
	// keys, or as PM2's with a note of what it does instead).
	pm2Copied = []string{
		"autorestart", "max_restarts", "min_uptime", "restart_delay", "exp_backoff_restart_delay", "kill_timeout",
		"max_memory_restart", "wait_ready", "listen_timeout", "cron_restart", "stop_exit_codes", "watch",
		"ignore_watch", "watch_delay", "watch_options", "env_file", "increment_var", "time", "log_date_format",
		"log_type", "source_map_support", "disable_source_map_support", "shutdown_with_message", "filter_env",
		"append_env_to_name",
	}
)

// app is one app of the file, from the processes of its instances.
func (imp *pm2Importer) app(g *pm2Group) (orderedObject, error) {
	p := g.procs[0]
	name := p.str("name")
	for _, q := range g.procs {
		if st := q.str("status"); st == "stopped" || st == "stopping" {
			imp.drop(dropStopped, g.name)
			break
		}
	}
	app := orderedObject{{"name", g.name}}
	script, interp, args, err := pm2Script(p)
	if err != nil {
		return nil, fmt.Errorf("%s: app %q: %v", imp.file, name, err)
	}
	app = append(app, kv{"script", script})
	if interp != "" {
		app = append(app, kv{"interpreter", interp})
	}
	if nodeArgs := words(p["node_args"]); len(nodeArgs) > 0 {
		app = append(app, kv{"node_args", nodeArgs})
	}
	if len(args) > 0 {
		app = append(app, kv{"args", args})
	}
	cwd := p.str("pm_cwd")
	if cwd == "" {
		cwd = p.str("cwd")
	}
	if cwd != "" {
		app = append(app, kv{"cwd", cwd})
	}
	app = append(app, kv{"instances", len(g.procs)})
	if strings.TrimSuffix(p.str("exec_mode"), "_mode") == "cluster" {
		app = append(app, kv{"exec_mode", "cluster"})
	}
	if ns := p.str("namespace"); ns != "" && ns != DefaultNamespace {
		app = append(app, kv{"namespace", ns})
	}
	if env := imp.userEnv(p, name); len(env) > 0 {
		app = append(app, kv{"env", env})
	}
	for _, k := range pm2Copied {
		if v, ok := p[k]; ok && !empty(v) && !isDefault(k, v) {
			app = append(app, kv{k, v})
		}
	}
	if iv := p.instanceVar(); iv != "NODE_APP_INSTANCE" {
		app = append(app, kv{"instance_var", iv})
	}
	for _, k := range sortedKeys(p) {
		if strings.HasPrefix(k, "env_") && len(k) > len("env_") {
			app = append(app, kv{k, p[k]}) // an --env NAME section, read by `run --env NAME`
		}
	}
	app = append(app, imp.files(g)...)
	imp.leftOut(p, name)
	return app, nil
}

// pm2Script is the script, interpreter and args that run p as PM2 ran it. PM2 runs a command
// line (`pm2 start "python3 -m http.server"`) as bash -c LINE with interpreter none: that is
// the line again. An interpreter is written only where pmdaemon would pick another one.
func pm2Script(p pm2Proc) (script, interp string, args []string, err error) {
	exec := p.str("pm_exec_path")
	args = words(p["args"])
	interp = p.str("exec_interpreter")
	if interp == "none" && len(args) == 2 && args[0] == "-c" && slices.Contains([]string{"bash", "sh"}, filepath.Base(exec)) {
		return args[1], "", nil, nil
	}
	script = quoteWord(exec)
	byExt := interpreters[extOf(exec)]
	switch {
	case interp == "none" && byExt == "":
		interp = "" // pmdaemon executes the file itself too
	case interp == "none":
		// "none" keeps pmdaemon from picking the extension's interpreter
	case interp == byExt, interp == "":
		interp = ""
	case filepath.Base(interp) == byExt:
		interp = "" // /usr/bin/node for a .js: what pmdaemon runs anyway
	}
	if strings.ContainsAny(interp, " \t\n") {
		return "", "", nil, fmt.Errorf("exec_interpreter %q has spaces; pmdaemon cannot tell its program from its arguments", interp)
	}
	return script, interp, args, nil
}

// words reads PM2's args and node_args: an array, or one string split like a shell would.
func words(v any) []string {
	switch x := v.(type) {
	case string:
		w, _ := SplitCommand(x)
		return w
	case []any:
		var out []string
		for _, a := range x {
			if s, ok := scalarString(a); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// empty is a value that asks for nothing: null, "", [] or {}.
func empty(v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case string:
		return x == ""
	case []any:
		return len(x) == 0
	case map[string]any:
		return len(x) == 0
	}
	return false
}

func isDefault(k string, v any) bool {
	d, ok := pm2Defaults[k]
	if !ok {
		switch k {
		case "autorestart":
			return v == true
		case "watch":
			return v == false
		}
		return false
	}
	return fmt.Sprint(d) == fmt.Sprint(v)
}

// PM2's own variables in every process's env: its home and mode, the process's ids, and the
// variable named after the app (PM2 keeps a "{}" there).
var pm2EnvNames = []string{"PM2_HOME", "PM2_USAGE", "PM2_JSON_PROCESSING", "PM2_INTERACTOR_PROCESSING",
	"PM2_PROGRAMMATIC", "PM2_DISCRETE_MODE", "pm_id", "unique_id", "_pm2_version"}

// shellEnv are a shell session's own variables: where it was and how deep, and the program
// it ran last (pm2).
var shellEnv = []string{"PWD", "OLDPWD", "SHLVL", "_"}

// userEnv is the env the user gave the app: what PM2 recorded for the process, less what PM2
// set itself, a shell session's variables, and what the shell that ran pm2 passed on (PM2
// records its whole environment in every process). The last is told by value: a variable
// that has the same value here was inherited, one that differs or that this shell does not
// have is the app's. The instance variable (NODE_APP_INSTANCE) is pmdaemon's to set; with
// increment_var, the first instance's value is the one the file keeps.
func (imp *pm2Importer) userEnv(p pm2Proc, name string) orderedObject {
	env, _ := p["env"].(map[string]any)
	var out orderedObject
	for _, k := range sortedKeys(env) {
		v := env[k]
		s, _ := scalarString(v)
		here, inherited := imp.here[k]
		switch {
		case slices.Contains(pm2EnvNames, k) || k == name || k == p.instanceVar():
			imp.drop(dropPM2Env, k)
		case slices.Contains(shellEnv, k):
			imp.drop(dropShellEnv, k)
		case inherited && here == s:
			imp.drop(dropInherited, k)
		default:
			if _, ok := scalarString(v); !ok {
				b, _ := json.Marshal(v) // PM2 passes an object on as its JSON
				v = string(b)
			}
			out = append(out, kv{k, v})
		}
	}
	return out
}

// files are the log and pid file keys. PM2's own files under PM2_HOME are left out; a file the
// user named has PM2's -<pm_id> taken out again (PM2 puts it before .log when logs are not
// merged, and always before .pid).
func (imp *pm2Importer) files(g *pm2Group) orderedObject {
	p := g.procs[0]
	home := p.str("PM2_HOME")
	if env, ok := p["env"].(map[string]any); ok && home == "" {
		home, _ = env["PM2_HOME"].(string)
	}
	merged := p["merge_logs"] == true
	var out orderedObject
	for _, f := range []struct{ from, key, dir, kind string }{
		{"pm_out_log_path", "out_file", "logs", dropLogs},
		{"pm_err_log_path", "error_file", "logs", dropLogs},
		{"pm_log_path", "log_file", "logs", dropLogs},
		{"pm_pid_path", "pid_file", "pids", dropPids},
	} {
		path := p.str(f.from)
		switch {
		case path == "":
		case home != "" && filepath.Dir(path) == filepath.Join(home, f.dir):
			imp.drop(f.kind, g.name)
		case f.key == "pid_file":
			out = append(out, kv{f.key, pidNumber().ReplaceAllString(path, ".pid")})
		case !merged:
			out = append(out, kv{f.key, logNumber().ReplaceAllString(path, ".log")})
		default:
			out = append(out, kv{f.key, path})
		}
	}
	if merged && len(g.procs) > 1 {
		out = append(out, kv{"merge_logs", true}) // PM2 sets it itself for an app of one process
	}
	return out
}

var (
	pidNumber = lazyRegexp(`-[0-9]+\.pid$`)
	logNumber = lazyRegexp(`-[0-9]+\.log$`)
)

// leftOut tells the keys of p the file does not carry: PM2's state, keys pmdaemon does not
// act on that ask for something, and keys nobody knows. Top-level copies of env variables
// (dump.pm2 flattens env into the process) are the env, told there.
func (imp *pm2Importer) leftOut(p pm2Proc, name string) {
	env, _ := p["env"].(map[string]any)
	for _, k := range sortedKeys(p) {
		v := p[k]
		_, inEnv := env[k]
		switch {
		case inEnv || k == name || k == p.instanceVar() || strings.HasPrefix(k, "env_"):
		case slices.Contains(pm2State, k):
			imp.drop(dropState, k)
		case slices.Contains(pm2Derived, k), slices.Contains(pm2Copied, k):
		case pm2Defaults[k] != nil && isDefault(k, v):
		case pm2Key(k) != nil || k == "autostart":
			imp.drop(dropUnused, fmt.Sprintf("%s (%s)", k, name))
		default:
			imp.drop(dropUnknown, fmt.Sprintf("%s (%s)", k, name))
		}
	}
}

// orderedObject is a JSON object written with its keys in the order given, so the file reads
// as a person writes one: name and script first.
type orderedObject []kv

type kv struct {
	k string
	v any
}

func (o orderedObject) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, e := range o {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(e.k)
		v, err := json.Marshal(e.v)
		if err != nil {
			return nil, fmt.Errorf("%s: %v", e.k, err)
		}
		b.Write(k)
		b.WriteByte(':')
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}
