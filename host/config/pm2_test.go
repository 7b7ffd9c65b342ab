package config

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
)

// pm2Want is what one app of a corpus file must load as. Zero fields are checked too: an
// app with no port must have none.
type pm2Want struct {
	instances int
	script    string
	args      []string
	env       map[string]string
	port      string
	socket    SocketMode
	cwd       string                    // relative to the corpus directory; "" for the directory itself
	check     func(t *testing.T, a App) // further checks, when the file is about another key
}

// noteKeys are the keys the notes of a load name, sorted.
func noteKeys(t *testing.T, file string, notes []string) []string {
	t.Helper()
	var keys []string
	for _, n := range notes {
		rest, ok := strings.CutPrefix(n, file+": \"")
		key, _, ok2 := strings.Cut(rest, "\": ")
		if !ok || !ok2 {
			t.Fatalf("note %q is not `%s: \"KEY\": text`", n, file)
		}
		keys = append(keys, key)
	}
	sort.Strings(keys)
	return keys
}

func TestPM2Corpus(t *testing.T) {
	if _, err := exec.LookPath("node"); err != nil {
		t.Fatalf("the JavaScript files of the corpus need node on PATH: %v", err)
	}
	cpus := runtime.NumCPU()
	dir, err := filepath.Abs("testdata/pm2")
	if err != nil {
		t.Fatal(err)
	}
	env := func(kv ...string) map[string]string {
		m := map[string]string{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	tests := []struct {
		file  string
		env   string // run --env
		apps  map[string]pm2Want
		order []string // app names in file order
		notes []string // keys noted
	}{
		{file: "cluster-port.json", order: []string{"api"}, apps: map[string]pm2Want{
			"api": {instances: 4, script: "server.js", env: env("PORT", "23000", "NODE_ENV", "production"), port: "23000", socket: SocketShared},
		}},
		{file: "cluster-max.config.js", order: []string{"web"}, apps: map[string]pm2Want{
			"web": {instances: cpus, script: "./dist/main.js", env: env("PORT", "23100", "NODE_ENV", "production"), port: "23100", socket: SocketShared},
		}},
		{file: "increment.json5", order: []string{"shard"}, apps: map[string]pm2Want{
			"shard": {instances: 3, script: "shard.js", env: env("PORT", "4000"), port: "4000-4002"},
		}},
		{file: "instances-zero.json", order: []string{"zero"}, apps: map[string]pm2Want{
			"zero": {instances: cpus, script: "worker.js"},
		}},
		{file: "instances-minus-one.cjs", order: []string{"spare-one", "spare-text"}, apps: map[string]pm2Want{
			"spare-one":  {instances: max(1, cpus-1), script: "worker.js"},
			"spare-text": {instances: max(1, cpus-1), script: "worker.js"},
		}},
		{file: "interpreter-python.json", order: []string{"py-worker"}, apps: map[string]pm2Want{
			"py-worker": {instances: 1, script: "python3 -u worker.py", args: []string{"--queue", "mail"}},
		}},
		{file: "interpreter-none.json5", order: []string{"shell-job"}, apps: map[string]pm2Want{
			"shell-job": {instances: 1, script: "env ./run.sh", check: func(t *testing.T, a App) {
				if a.Autorestart {
					t.Error("autorestart: false was not kept")
				}
			}},
		}},
		{file: "node-args.config.js", order: []string{"heavy", "bun-app"}, apps: map[string]pm2Want{
			"heavy": {instances: 1, script: "node --max-old-space-size=512 --enable-source-maps server.js", check: func(t *testing.T, a App) {
				if a.MaxMemoryRestart != 600<<20 {
					t.Errorf("max_memory_restart = %d, want 600M", a.MaxMemoryRestart)
				}
			}},
			"bun-app": {instances: 1, script: "/usr/local/bin/bun index.ts"},
		}},
		{file: "env-sections.json", env: "production", order: []string{"shop"}, notes: []string{"env_staging"}, apps: map[string]pm2Want{
			"shop": {instances: 1, script: "app.js", env: env("NODE_ENV", "production", "LOG_LEVEL", "debug", "DB", "prod-db")},
		}},
		{file: "env-sections.json", order: []string{"shop"}, notes: []string{"env_production", "env_staging"}, apps: map[string]pm2Want{
			"shop": {instances: 1, script: "app.js", env: env("NODE_ENV", "development", "LOG_LEVEL", "debug")},
		}},
		{file: "env-sections.json", env: "qa", order: []string{"shop"}, notes: []string{"env_production", "env_staging"}, apps: map[string]pm2Want{
			"shop": {instances: 1, script: "app.js", env: env("NODE_ENV", "development", "LOG_LEVEL", "debug")},
		}},
		{file: "deploy.config.js", order: []string{"site"}, notes: []string{"deploy"}, apps: map[string]pm2Want{
			"site": {instances: 1, script: "index.js"},
		}},
		{file: "fork-quiet.json", order: []string{"quiet"}, apps: map[string]pm2Want{
			"quiet": {instances: 1, script: "index.js", check: func(t *testing.T, a App) {
				got := []any{a.MaxRestarts, a.MinUptime, a.RestartDelay, a.KillTimeout, a.Autorestart}
				want := []any{10, 10 * time.Second, 3 * time.Second, 1600 * time.Millisecond, true}
				if !reflect.DeepEqual(got, want) {
					t.Errorf("max_restarts, min_uptime, restart_delay, kill_timeout, autorestart = %v, want %v", got, want)
				}
			}},
		}},
		{file: "noted.json", order: []string{"noisy"}, notes: []string{
			"append_env_to_name", "disable_logs", "filter_env", "force", "gid", "instance_var", "kill_retry_time",
			"pmx", "post_update", "source_map_support", "treekill", "user", "vizion", "windowsHide",
		}, apps: map[string]pm2Want{"noisy": {instances: 1, script: "index.js", check: func(t *testing.T, a App) {
			if !a.ShutdownWithMessage {
				t.Error("shutdown_with_message: true was not kept")
			}
		}}}},
		{file: "later-keys.json", order: []string{"later"}, notes: []string{}, apps: map[string]pm2Want{"later": {instances: 1, script: "index.js", check: func(t *testing.T, a App) {
			if a.Namespace != "backend" || a.PidFile != filepath.Join(dir, "run/later.pid") {
				t.Errorf("namespace, pid_file = %q, %q; want backend and run/later.pid in the file's directory", a.Namespace, a.PidFile)
			}
			// Keys PM2 and pmdaemon share are read as pmdaemon reads them, without a note.
			if !slices.Equal(a.EnvFile, []string{".env"}) || a.CronRestart != "0 3 * * *" || !slices.Equal(a.StopExitCodes, []int{0}) ||
				!slices.Equal(a.Watch, []string{"src"}) || !slices.Equal(a.IgnoreWatch, []string{"node_modules", "logs"}) || a.WatchDelay != time.Second {
				t.Errorf("shared keys read as env_file %q cron %q stop codes %v watch %q ignore %q delay %s",
					a.EnvFile, a.CronRestart, a.StopExitCodes, a.Watch, a.IgnoreWatch, a.WatchDelay)
			}
			// PM2's log keys are pmdaemon's, relative paths under cwd; combine_logs is merge_logs.
			if !a.Time || a.LogDateFormat != "YYYY-MM-DD HH:mm Z" || a.LogType != LogTypeJSON ||
				a.LogFile != filepath.Join(a.Cwd, "logs/combined.log") || !a.MergeLogs {
				t.Errorf("log keys read as time %v log_date_format %q log_type %q log_file %q merge_logs %v",
					a.Time, a.LogDateFormat, a.LogType, a.LogFile, a.MergeLogs)
			}
			if a.WaitTimeout != 8*time.Second {
				t.Errorf("listen_timeout: 8000 read as wait_timeout %s, want 8s", a.WaitTimeout)
			}
		}}}},
		{file: "aliases.json", order: []string{"aliased"}, apps: map[string]pm2Want{
			"aliased": {instances: 1, script: "node --inspect=0 index.js", check: func(t *testing.T, a App) {
				if a.OutFile != filepath.Join(dir, "logs/out.log") || a.ErrorFile != filepath.Join(dir, "logs/err.log") {
					t.Errorf("out_file, error_file = %q, %q; want them from output and err_file", a.OutFile, a.ErrorFile)
				}
			}},
		}},
		{file: "single-app.json", order: []string{"lonely"}, apps: map[string]pm2Want{
			"lonely": {instances: 2, script: "index.js", env: env("PORT", "23200"), port: "23200", socket: SocketShared},
		}},
		{file: "commented.json", order: []string{"commented"}, apps: map[string]pm2Want{
			"commented": {instances: 1, script: "index.js", args: []string{"a", "b"}, env: env("GREETING", `it's "quoted"`)},
		}},
		{file: "numbers.json5", order: []string{"numbers"}, apps: map[string]pm2Want{
			"numbers": {instances: 1, script: "index.js", env: env("RATIO", "0.5", "WHOLE", "5"), check: func(t *testing.T, a App) {
				if a.KillTimeout != 2*time.Second || a.MaxRestarts != 3 {
					t.Errorf("kill_timeout 0x7D0, max_restarts +3 read as %s, %d", a.KillTimeout, a.MaxRestarts)
				}
			}},
		}},
		{file: "esm.config.mjs", order: []string{"esm-api", "esm-cron"}, apps: map[string]pm2Want{
			"esm-api":  {instances: 2, script: "api.mjs", env: env("NODE_ENV", "production", "PORT", "23300"), port: "23300", socket: SocketShared},
			"esm-cron": {instances: 1, script: "cron.mjs", env: env("NODE_ENV", "production")},
		}},
		{file: "functions.mjs", order: []string{"fn"}, apps: map[string]pm2Want{
			"fn": {instances: 1, script: "index.js", env: env("A", "1")},
		}},
		{file: "computed.config.js", order: []string{"alpha", "beta", "gamma"}, apps: map[string]pm2Want{
			"alpha": {instances: 1, script: "services/alpha.js", env: env("PORT", "23400", "SERVICE", "ALPHA")},
			"beta":  {instances: 1, script: "services/beta.js", env: env("PORT", "23401", "SERVICE", "BETA")},
			"gamma": {instances: 1, script: "services/gamma.js", env: env("PORT", "23402", "SERVICE", "GAMMA")},
		}},
		{file: "single.config.cjs", order: []string{"cjs-single"}, apps: map[string]pm2Want{
			"cjs-single": {instances: 1, script: "npm", args: []string{"run", "start:prod"}},
		}},
		{file: "pm2-apps.js", order: []string{"pm2-named"}, apps: map[string]pm2Want{
			"pm2-named": {instances: 1, script: "app.py"}, // python3 is what .py runs with anyway
		}},
		{file: "cluster-no-port.json", order: []string{"cpu-bound"}, notes: []string{"exec_mode"}, apps: map[string]pm2Want{
			"cpu-bound": {instances: 2, script: "crunch.js"},
		}},
		{file: "cluster-own-port.json", order: []string{"own-port"}, apps: map[string]pm2Want{
			"own-port": {instances: 3, script: "server.js", env: env("PORT", "3000"), port: "auto:24000-24100"},
		}},
		{file: "mixed.config.js", env: "production", order: []string{"gateway", "jobs", "static"}, apps: map[string]pm2Want{
			"gateway": {instances: 2, script: "gateway.js", env: env("PORT", "23600", "NODE_ENV", "production"), port: "23600", socket: SocketShared, check: func(t *testing.T, a App) {
				if !a.WaitReady {
					t.Error("wait_ready: true was not kept")
				}
				if a.WaitTimeout != 10*time.Second {
					t.Errorf("listen_timeout: 10000 read as wait_timeout %s, want 10s", a.WaitTimeout)
				}
				if a.ReadyRule() != ReadyNotify {
					t.Errorf("a node app with wait_ready waits for %q, want %q (process.send('ready'))", a.ReadyRule(), ReadyNotify)
				}
			}},
			"jobs":   {instances: 1, script: "jobs.py"},
			"static": {instances: 1, script: "serve", args: []string{"-s", "build", "-l", "23700"}},
		}},
		{file: "logs.json", order: []string{"logger"}, apps: map[string]pm2Want{
			"logger": {instances: 1, script: "index.js"},
		}},
		{file: "native-keys.json5", order: []string{"native"}, apps: map[string]pm2Want{
			"native": {instances: 2, script: "server.js", env: env("PORT", "23800"), port: "23800", socket: SocketShared, check: func(t *testing.T, a App) {
				if a.HealthCheck == nil || a.HealthCheck.URL != "http://127.0.0.1:{port}/health" {
					t.Errorf("health_check = %+v", a.HealthCheck)
				}
			}},
		}},
		{file: "bare-array.json", order: []string{"mailer", "reports"}, apps: map[string]pm2Want{
			"mailer":  {instances: 2, script: "workers/mailer.js"}, // no name: the script's base name, as PM2 names it
			"reports": {instances: 1, script: "workers/reports.js", env: env("QUEUE", "reports")},
		}},
		{file: "apps-object.config.js", order: []string{"solo"}, apps: map[string]pm2Want{
			"solo": {instances: 2, script: "solo.js", env: env("TIER", "one")},
		}},
		{file: "env-values.json", order: []string{"typed-env"}, apps: map[string]pm2Want{
			"typed-env": {instances: 1, script: "index.js", env: env("DEBUG", "false", "WORKERS", "4", "RATIO", "0.25", "EMPTY", "",
				"NOTHING", "null", "FEATURES", `{"beta":true}`, "HOSTS", `["a","b"]`)},
		}},
		{file: "shell-port.json", order: []string{"static-files", "tail-errors"}, apps: map[string]pm2Want{
			"static-files": {instances: 1, script: "python3 -m http.server $PORT --bind 127.0.0.1", env: env("PORT", "23900")},
			"tail-errors":  {instances: 1, script: "tail -F access.log | grep --line-buffered ' 500 ' >> errors.log"},
		}},
		{file: "npm-chain.config.js", order: []string{"site"}, apps: map[string]pm2Want{
			"site": {instances: 1, script: "npm ci && npm run build && npm start", env: env("NODE_ENV", "production", "PORT", "23910"), check: func(t *testing.T, a App) {
				if a.Autorestart {
					t.Error("autorestart: false was not kept")
				}
			}},
		}},
		{file: "args-string.json", order: []string{"cli-args"}, apps: map[string]pm2Want{
			"cli-args": {instances: 1, script: "server.js", args: []string{"--port", "23920", "--title", "two words", "--verbose"}},
		}},
		{file: "env-file.config.js", order: []string{"dotenv-app"}, apps: map[string]pm2Want{
			"dotenv-app": {instances: 1, script: "app.js", env: env("OVERRIDE", "from-env"), check: func(t *testing.T, a App) {
				fileEnv, err := a.FileEnv()
				if err != nil || !reflect.DeepEqual(fileEnv, map[string]string{"FROM_FILE": "yes", "OVERRIDE": "from-file"}) {
					t.Errorf("env_file read as %v, %v", fileEnv, err)
				}
			}},
		}},
		{file: "cron-jobs.config.cjs", order: []string{"nightly-report", "cache-warm"}, apps: map[string]pm2Want{
			"nightly-report": {instances: 1, script: "report.js", check: func(t *testing.T, a App) {
				if a.CronRestart != "0 2 * * *" || a.Autorestart || len(a.Watch) != 0 {
					t.Errorf("cron_restart %q autorestart %v watch %q", a.CronRestart, a.Autorestart, a.Watch)
				}
			}},
			"cache-warm": {instances: 1, script: "warm.js", check: func(t *testing.T, a App) {
				if a.CronRestart != "*/15 * * * *" {
					t.Errorf("cron (PM2's alias) read as cron_restart %q", a.CronRestart)
				}
			}},
		}},
		{file: "watch.json5", order: []string{"dev-server"}, apps: map[string]pm2Want{
			"dev-server": {instances: 1, script: "src/server.js", check: func(t *testing.T, a App) {
				if !slices.Equal(a.Watch, []string{"."}) || !slices.Equal(a.IgnoreWatch, []string{"node_modules", `\.git`, "*.log"}) ||
					a.WatchDelay != 500*time.Millisecond || len(a.WatchOptions) != 3 {
					t.Errorf("watch %q ignore %q delay %s options %v", a.Watch, a.IgnoreWatch, a.WatchDelay, a.WatchOptions)
				}
			}},
		}},
		{file: "stop-codes.json", order: []string{"batch"}, apps: map[string]pm2Want{
			"batch": {instances: 1, script: "batch.js", check: func(t *testing.T, a App) {
				got := []any{a.StopExitCodes, a.KillTimeout, a.RestartDelay, a.ExpBackoffRestartDelay, a.MaxRestarts, a.MinUptime}
				want := []any{[]int{0, 3}, 8 * time.Second, 2 * time.Second, 100 * time.Millisecond, 5, 5 * time.Second}
				if !reflect.DeepEqual(got, want) {
					t.Errorf("stop_exit_codes, kill_timeout, restart_delay, exp_backoff, max_restarts, min_uptime = %v, want %v", got, want)
				}
			}},
		}},
		{file: "process-env.config.js", order: []string{"from-env"}, apps: map[string]pm2Want{
			"from-env": {instances: 1, script: "server.js", env: env("PORT", "23950", "HOME_SET", "yes", "MODE", "default")},
		}},
		{file: "dirname.config.js", order: []string{"nested"}, apps: map[string]pm2Want{
			"nested": {instances: 1, script: "./bin/www", cwd: "services/api", check: func(t *testing.T, a App) {
				if a.OutFile != filepath.Join(dir, "logs/nested-out.log") || a.ErrorFile != filepath.Join(dir, "logs/nested-err.log") {
					t.Errorf("out_file, error_file = %q, %q", a.OutFile, a.ErrorFile)
				}
			}},
		}},
		{file: "named-export.config.mjs", order: []string{"named-api"}, apps: map[string]pm2Want{
			"named-api": {instances: 2, script: "api.mjs", env: env("PORT", "23310"), port: "23310", socket: SocketShared},
		}},
		{file: "process.yml", env: "production", order: []string{"yaml-api", "worker"}, apps: map[string]pm2Want{
			"yaml-api": {instances: 2, script: "server.js", env: env("PORT", "23980", "NODE_ENV", "prod", "VERBOSE", "on"), port: "23980", socket: SocketShared},
			"worker":   {instances: 1, script: "worker.py", args: []string{"--queue", "mail"}},
		}},
		{file: "max-increment.json", order: []string{"per-core"}, apps: map[string]pm2Want{
			"per-core": {instances: cpus, script: "server.js", env: env("PORT", "24200"), port: fmt.Sprintf("24200-%d", 24200+cpus-1)},
		}},
		{file: "ts-node.config.js", order: []string{"typed"}, apps: map[string]pm2Want{
			"typed": {instances: 1, script: "node --require ts-node/register src/index.ts", args: []string{"--color"}},
		}},
		{file: "uvicorn.json", order: []string{"asgi"}, apps: map[string]pm2Want{
			"asgi": {instances: 1, script: "uvicorn", args: []string{"main:app", "--host", "127.0.0.1", "--port", "23970"}, env: env("PYTHONUNBUFFERED", "1")},
		}},
		{file: "multi-env.config.js", env: "staging", order: []string{"api", "worker"}, notes: []string{"env_production"}, apps: map[string]pm2Want{
			"api":    {instances: 1, script: "api.js", env: env("NODE_ENV", "staging", "API_URL", "https://staging.example")},
			"worker": {instances: 1, script: "worker.js", env: env("QUEUE", "staging")},
		}},
	}
	// Every file of the corpus has its plan checked here.
	files, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	covered := map[string]bool{}
	for _, tc := range tests {
		covered[tc.file] = true
	}
	n := 0
	for _, f := range files {
		if f.IsDir() || strings.HasPrefix(f.Name(), ".") {
			continue
		}
		n++
		if !covered[f.Name()] {
			t.Errorf("corpus file %s has no entry in this table", f.Name())
		}
	}
	if n < 40 {
		t.Errorf("the corpus has %d files; issue 14 asks for at least 40", n)
	}
	for _, tc := range tests {
		t.Run(tc.file+"/env="+tc.env, func(t *testing.T) {
			t.Parallel()
			eco, err := LoadEcosystemWith(filepath.Join(dir, tc.file), LoadOptions{Env: tc.env})
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, a := range eco.Apps {
				names = append(names, a.Name)
			}
			if !slices.Equal(names, tc.order) {
				t.Fatalf("apps %v, want %v", names, tc.order)
			}
			for _, a := range eco.Apps {
				w := tc.apps[a.Name]
				if a.Instances != w.instances || a.Script != w.script || a.Port != w.port || a.Socket != w.socket {
					t.Errorf("%s: instances, script, port, socket = %d, %q, %q, %q; want %d, %q, %q, %q",
						a.Name, a.Instances, a.Script, a.Port, a.Socket, w.instances, w.script, w.port, w.socket)
				}
				if len(a.Args)+len(w.args) > 0 && !slices.Equal(a.Args, w.args) {
					t.Errorf("%s: args %q, want %q", a.Name, a.Args, w.args)
				}
				if len(a.Env)+len(w.env) > 0 && !reflect.DeepEqual(a.Env, w.env) {
					t.Errorf("%s: env %v, want %v", a.Name, a.Env, w.env)
				}
				if want := filepath.Join(dir, w.cwd); a.Cwd != want {
					t.Errorf("%s: cwd %q, want %q", a.Name, a.Cwd, want)
				}
				if w.check != nil {
					w.check(t, a)
				}
			}
			if got := noteKeys(t, tc.file, eco.Notes); !slices.Equal(got, tc.notes) {
				t.Errorf("notes on %v, want on %v; notes:\n%s", got, tc.notes, strings.Join(eco.Notes, "\n"))
			}
		})
	}
}

// TestPM2NotesOncePerFile: a key many apps use is noted once, with the file's name.
func TestPM2NotesOncePerFile(t *testing.T) {
	doc := `{"apps": [
		{"name": "a", "script": "x", "force": true, "vizion": false},
		{"name": "b", "script": "x", "force": true},
		{"name": "c", "script": "x", "force": false, "vizion": true}]}`
	eco, err := ParseEcosystem([]byte(doc), "eco.json", "/d")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		`eco.json: "force": ignored: an app already running is left alone (run --update replaces it)`,
		`eco.json: "vizion": ignored: pmdaemon keeps no version-control metadata`,
	}
	if !slices.Equal(eco.Notes, want) {
		t.Errorf("notes:\n%s\nwant:\n%s", strings.Join(eco.Notes, "\n"), strings.Join(want, "\n"))
	}
}

func TestPM2Errors(t *testing.T) {
	dir := "testdata/pm2/errors"
	tests := []struct {
		file string
		env  string
		want []string
	}{
		{"typo.json", "", []string{"typo.json: apps[0] (t)", `unknown key "exec_mod"`, `did you mean "exec_mode"`}},
		{"open-comment.json", "", []string{"open-comment.json: line 3, column 5", "/* is never closed"}},
		{"single-quote.json5", "", []string{"single-quote.json5: line 2, column 31", "not closed on its line"}},
		{"throws.config.js", "", []string{"throws.config.js:3: PORT is not set"}},
		{"syntax.config.js", "", []string{"syntax.config.js:3: ", "Unexpected identifier"}},
		{"exports-nothing.config.js", "", []string{"exports-nothing.config.js exports nothing", "module.exports"}},
		{"bad-mode.json", "", []string{"bad-mode.json: apps[0] (m)", `"exec_mode" must be "fork" or "cluster"`, `"parallel"`}},
		{"increment-no-port.json", "", []string{"increment-no-port.json: apps[0] (i)", `"increment_var": "PORT" needs a PORT in "env"`}},
		{"top-typo.json", "", []string{"top-typo.json", `unknown top-level key "aps"`, `did you mean "apps"`}},
		{"dup-key.yaml", "", []string{"dup-key.yaml: invalid YAML: line 4", `key "name" appears twice in apps[0]`}},
		{"indent.yml", "", []string{"indent.yml: invalid YAML: line ", "did not find expected"}},
		{"typo.yml", "", []string{"typo.yml: apps[0] (y)", `unknown key "scrpt"`, `did you mean "script"`}},
		{"empty.yaml", "", []string{"empty.yaml", "no document"}},
		{"two-docs.yaml", "", []string{"two-docs.yaml", "more than one YAML document"}},
		{"nan.yaml", "", []string{"nan.yaml", "apps[0].env.X", "not a number JSON can hold"}},
		{"env-section-not-object.json", "production", []string{"apps[0] (e)", `"env_production" must be an object`, "a string"}},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			t.Parallel()
			_, err := LoadEcosystemWith(filepath.Join(dir, tc.file), LoadOptions{Env: tc.env})
			if err == nil {
				t.Fatal("loaded; want an error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

// TestPM2JSWithoutNode: with no node on PATH, a JS file is refused with what to do.
func TestPM2JSWithoutNode(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	_, err := LoadEcosystem("testdata/pm2/cluster-max.config.js")
	want := "cluster-max.config.js needs node to be read: install nodejs, or convert it to JSON"
	if err == nil || err.Error() != want {
		t.Fatalf("error %v, want %q", err, want)
	}
}

func TestIsEcosystemFile(t *testing.T) {
	for _, tc := range []struct {
		path string
		want bool
	}{
		{"ecosystem.config.js", true}, {"dir/app.config.js", true}, {"ecosystem.js", true}, {"pm2.prod.js", true},
		{"apps.config.cjs", true}, {"apps.config.mjs", true}, {"ecosystem.cjs", true}, {"pm2.mjs", true},
		{"eco.json", true}, {"eco.JSON5", true}, {"process.yml", true}, {"ecosystem.YAML", true},
		{"server.mjs", false}, {"worker.cjs", false}, {"config.mjs", false}, {"server.js", false}, {"index.js", false}, {"app.py", false}, {"eco.lua", false}, {"config", false},
	} {
		if got := IsEcosystemFile(tc.path); got != tc.want {
			t.Errorf("IsEcosystemFile(%q) = %v, want %v", tc.path, got, tc.want)
		}
	}
}

// TestPM2KeysDocumented: every PM2 key the loader knows is in the migration guide.
func TestPM2KeysDocumented(t *testing.T) {
	doc, err := os.ReadFile("../../docs/migrating-from-pm2.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range append(pm2KeyNames(), "deploy") {
		if !strings.Contains(string(doc), "`"+k+"`") && !strings.Contains(string(doc), "`"+k+":") {
			t.Errorf("docs/migrating-from-pm2.md does not mention `%s`", k)
		}
	}
}

// BenchmarkPM2Load compares a 10-app file read as JSON and as a .config.js (node's start-up
// included: the price of a JS ecosystem file).
func BenchmarkPM2Load(b *testing.B) {
	var apps []string
	for i := range 10 {
		apps = append(apps, fmt.Sprintf(`{"name": "app%d", "script": "index.js", "instances": 2, "exec_mode": "cluster", "env": {"PORT": %d}}`, i, 23000+i))
	}
	body := `{"apps": [` + strings.Join(apps, ",\n") + `]}`
	dir := b.TempDir()
	files := map[string]string{"json": "eco.json", "config.js": "ecosystem.config.js"}
	for kind, name := range files {
		content := body
		if kind == "config.js" {
			content = "module.exports = " + body + ";\n"
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	for _, kind := range []string{"json", "config.js"} {
		b.Run(kind, func(b *testing.B) {
			for b.Loop() {
				eco, err := LoadEcosystem(filepath.Join(dir, files[kind]))
				if err != nil {
					b.Fatal(err)
				}
				if len(eco.Apps) != 10 {
					b.Fatalf("%d apps, want 10", len(eco.Apps))
				}
			}
		})
	}
}

// TestPM2JSBounds: a file that never finishes, or prints without end, is stopped with an
// error naming it, and leaves no process behind (its process group is killed).
func TestPM2JSBounds(t *testing.T) {
	dir := t.TempDir()
	// The loop starts a child first and says its pid, so the test can see it end too.
	loop := "const c = require('child_process').spawn('sleep', ['300'], {stdio: 'ignore'});\n" +
		"require('fs').writeFileSync(__dirname + '/child.pid', String(c.pid));\nwhile (true) {}\n"
	tests := []struct {
		name, body string
		bound      time.Duration // long enough for node to start on a loaded machine
		want       string
	}{
		{"loops.config.js", loop, 5 * time.Second, "loops.config.js: node did not finish reading it within 5s"},
		{"prints.config.js", "const s = 'x'.repeat(1 << 20);\nfor (let i = 0; i < 8; i++) process.stdout.write(s);\nmodule.exports = {apps: []};\n", time.Minute, "prints.config.js: node printed more than 4 MiB"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, tc.name)
			if err := os.WriteFile(path, []byte(tc.body), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := evalJS(path, tc.bound)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
	pidText, err := os.ReadFile(filepath.Join(dir, "child.pid"))
	if err != nil {
		t.Fatalf("the looping file did not start its child: %v", err)
	}
	// SIGKILL went to the group; the orphaned child is reaped by init soon after.
	stat := "/proc/" + strings.TrimSpace(string(pidText)) + "/stat"
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, err := os.ReadFile(stat)
		if err != nil || strings.Contains(string(b), ") Z ") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the child the file started (pid %s) is still running", pidText)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
