package config

import (
	"fmt"
	"runtime"
	"strconv"
	"strings"
)

// LoadOptions are the choices a user makes when loading an ecosystem file.
type LoadOptions struct {
	// Env selects PM2's env_<Env> section of every app, merged over its "env" (run --env).
	Env string
}

// Notes are the one-line notes of a file: what pmdaemon does instead of a PM2 key. Each key
// is noted once per file, in the order first met.
type Notes struct {
	file string
	seen map[string]bool
	list []string
}

func newNotes(file string) *Notes { return &Notes{file: file, seen: map[string]bool{}} }

// add records key's note unless the file already has one for key.
func (n *Notes) add(key, text string) {
	if n.seen[key] {
		return
	}
	n.seen[key] = true
	n.list = append(n.list, fmt.Sprintf("%s: %q: %s", n.file, key, text))
}

// pm2App turns an app object that may use PM2's keys into one with pmdaemon's keys only, so
// that AppFromMap reads it. Keys neither knows are left in place: AppFromMap refuses them, with
// a suggestion that pm2App's caller widens to PM2's keys.
func pm2App(m map[string]any, opts LoadOptions, notes *Notes) (map[string]any, error) {
	keys := sortedKeys(m)
	out := make(map[string]any, len(m))
	pm2 := map[string]any{}     // canonical PM2 key → value
	from := map[string]string{} // canonical key → the key the file wrote
	envs := map[string]any{}
	for _, k := range keys {
		v := m[k]
		if strings.HasPrefix(k, "env_") && len(k) > len("env_") && fieldByKey(AppFields, k) == nil {
			envs[strings.TrimPrefix(k, "env_")] = v
			continue
		}
		pk := pm2Key(k)
		if pk == nil {
			if fieldByKey(AppFields, k) == nil {
				return nil, &FieldError{Key: k, Err: &UnknownKeyError{Key: k, Suggestion: suggest(k, append(keyNames(AppFields), pm2KeyNames()...))}}
			}
			out[k] = v
			continue
		}
		c := pk.canonical()
		_, wroteCanonical := m[c]
		if prev, dup := from[c]; dup || (c != k && wroteCanonical) {
			if !dup {
				prev = c
			}
			return nil, &FieldError{Key: c, Err: fmt.Errorf("%q and %q are the same key; give one", prev, k)}
		}
		from[c] = k
		if b, isBool := v.(bool); isBool && c == "log_file" {
			// PM2 takes `log_file: true` for ~/.pm2/logs/<name>.log.
			if b {
				notes.add(k, "true is not a path: no combined log is written; give a file name")
			}
			continue
		}
		if fieldByKey(AppFields, c) != nil {
			out[c] = v // a PM2 alias of a pmdaemon key
			continue
		}
		pm2[c] = v
		if !pk.Honoured || pk.Note != "" {
			notes.add(k, pk.Note)
		}
	}
	if err := pm2Env(out, envs, opts, notes); err != nil {
		return nil, err
	}
	if err := pm2Instances(out); err != nil {
		return nil, err
	}
	if err := pm2Interpreter(out, pm2, from, notes); err != nil {
		return nil, err
	}
	if err := pm2Mode(out, pm2, from, notes); err != nil {
		return nil, err
	}
	return out, nil
}

// pm2Env merges env_<opts.Env> over env, as `pm2 start FILE --env NAME` does; other env_
// sections are noted as unused.
func pm2Env(out map[string]any, envs map[string]any, opts LoadOptions, notes *Notes) error {
	for _, n := range sortedKeys(envs) {
		if n == opts.Env {
			continue
		}
		notes.add("env_"+n, "used only with `pmdaemon run FILE --env "+n+"`")
	}
	sel, ok := envs[opts.Env]
	if opts.Env == "" || !ok {
		return nil
	}
	over, isObj := sel.(map[string]any)
	if !isObj {
		return &FieldError{Key: "env", Err: fmt.Errorf("%q must be an object of NAME: value, got %s", "env_"+opts.Env, typeName(sel))}
	}
	merged := map[string]any{}
	if base, ok := out["env"].(map[string]any); ok {
		for k, v := range base {
			merged[k] = v
		}
	} else if base, ok := out["env"]; ok {
		return &FieldError{Key: "env", Err: fmt.Errorf("%q must be an object of NAME: value, got %s", "env", typeName(base))}
	}
	for k, v := range over {
		merged[k] = v
	}
	out["env"] = merged
	return nil
}

// pm2Instances reads PM2's counts that pmdaemon's "instances" does not take: 0 is one per
// CPU (as "max"), a negative n is that many fewer than the CPUs, at least one.
func pm2Instances(out map[string]any) error {
	v, ok := out["instances"]
	if !ok {
		return nil
	}
	var n int64
	switch x := v.(type) {
	case string:
		i, err := strconv.ParseInt(strings.TrimSpace(x), 10, 64)
		if err != nil {
			return nil // "max", or a bad value the instances key reports
		}
		n = i
	default:
		i, whole := wholeNumber(v)
		if !whole {
			return nil
		}
		n = i
	}
	if n > 0 {
		return nil
	}
	cpus := int64(runtime.NumCPU())
	out["instances"] = max(1, cpus+n)
	return nil
}

// pm2Interpreter folds interpreter and node_args into the script's command line.
func pm2Interpreter(out map[string]any, pm2 map[string]any, from map[string]string, notes *Notes) error {
	iv, hasInterp := pm2["interpreter"]
	av, hasArgs := pm2["node_args"]
	if !hasInterp && !hasArgs {
		return nil
	}
	script, ok := out["script"].(string)
	if !ok {
		return nil // AppFromMap reports the missing or bad script
	}
	interp := ""
	if hasInterp {
		s, ok := iv.(string)
		if !ok {
			return &FieldError{Key: "interpreter", Err: fmt.Errorf("%q must be a string, got %s", from["interpreter"], describe(iv))}
		}
		interp = strings.TrimSpace(s)
	}
	var iargs []string
	if hasArgs {
		words, err := AppField("args").decode(av)
		if err != nil {
			return &FieldError{Key: "node_args", Err: fmt.Errorf("%q %w", from["node_args"], err)}
		}
		iargs = words.([]string)
	}
	words, err := SplitCommand(script)
	if err != nil || len(words) == 0 {
		return nil // AppFromMap reports it
	}
	if interp == "none" {
		if len(iargs) > 0 {
			notes.add(from["node_args"], "ignored: interpreter is \"none\"")
		}
		if _, byExt := interpreters[extOf(words[0])]; byExt {
			// pmdaemon picks an interpreter from these extensions; env(1) execs the file
			// itself, as PM2 does with "none", and keeps the pid.
			if !strings.Contains(words[0], "/") {
				words[0] = "./" + words[0] // env(1) searches PATH for a bare name
			}
			line := []string{"env"}
			for _, w := range words {
				line = append(line, quoteWord(w))
			}
			out["script"] = strings.Join(line, " ")
		}
		return nil
	}
	if interp == "" {
		if interp = interpreters[extOf(words[0])]; interp == "" {
			interp = "node" // PM2's default interpreter
		}
	}
	if len(iargs) == 0 && interpreters[extOf(words[0])] == interp {
		return nil // what pmdaemon runs anyway
	}
	line := []string{quoteWord(interp)}
	for _, a := range iargs {
		line = append(line, quoteWord(a))
	}
	out["script"] = strings.Join(line, " ") + " " + script
	return nil
}

// pm2Mode maps exec_mode and increment_var onto port specs: a cluster app with PORT in env
// shares that one port between its instances (a socket the daemon holds, as Node's cluster
// master does); increment_var PORT gives instance i the port PORT+i.
func pm2Mode(out map[string]any, pm2 map[string]any, from map[string]string, notes *Notes) error {
	mode := "fork"
	if v, ok := pm2["exec_mode"]; ok {
		s, isStr := v.(string)
		switch s = strings.TrimSuffix(s, "_mode"); {
		case !isStr || (s != "fork" && s != "cluster"):
			return &FieldError{Key: "exec_mode", Err: fmt.Errorf("%q must be \"fork\" or \"cluster\" (or \"fork_mode\", \"cluster_mode\"), got %s", from["exec_mode"], describe(v))}
		}
		mode = s
	}
	envPort := ""
	if env, ok := out["env"].(map[string]any); ok {
		if p, ok := env["PORT"]; ok {
			envPort, _ = scalarString(p)
		}
	}
	inc := ""
	if v, ok := pm2["increment_var"]; ok {
		s, isStr := v.(string)
		if !isStr || strings.TrimSpace(s) == "" {
			return &FieldError{Key: "increment_var", Err: fmt.Errorf("%q must be the name of an environment variable, got %s", "increment_var", describe(v))}
		}
		inc = s
		if s != "PORT" {
			notes.add("increment_var", fmt.Sprintf("only PORT is incremented per instance (from a port spec); %s is not; NODE_APP_INSTANCE numbers the instances", s))
		}
	}
	_, hasPort := out["port"]
	switch {
	case inc == "PORT" && !hasPort:
		if envPort == "" {
			return &FieldError{Key: "increment_var", Err: fmt.Errorf(`"increment_var": "PORT" needs a PORT in "env" to start from`)}
		}
		base, err := strconv.Atoi(strings.TrimSpace(envPort))
		if err != nil || base < 1 || base > 65535 {
			return &FieldError{Key: "increment_var", Err: fmt.Errorf(`"increment_var": "PORT" needs a port number in env PORT, got %q`, envPort)}
		}
		n, err := countOf(out["instances"])
		if err != nil {
			return nil // the instances key reports it
		}
		if n == 1 {
			out["port"] = strconv.Itoa(base)
		} else {
			out["port"] = fmt.Sprintf("%d-%d", base, base+n-1)
		}
	case mode == "cluster" && !hasPort && envPort != "":
		out["port"] = strings.TrimSpace(envPort)
		if _, ok := out["socket"]; !ok {
			out["socket"] = "shared"
		}
	case mode == "cluster" && !hasPort:
		notes.add(from["exec_mode"], "each instance is a process of its own; with no PORT in env there is no port to share (give \"port\", and \"socket\": \"shared\" for one port)")
	}
	return nil
}

// countOf is the instance count an "instances" value stands for (1 when absent).
func countOf(v any) (int, error) {
	if v == nil {
		return 1, nil
	}
	if s, ok := v.(string); ok {
		return instancesCount(s)
	}
	n, ok := wholeNumber(v)
	if !ok {
		return 0, fmt.Errorf("not a count")
	}
	return instancesCount(strconv.FormatInt(n, 10))
}

func extOf(word string) string {
	i := strings.LastIndexByte(word, '.')
	if i < 0 || strings.ContainsRune(word[i:], '/') {
		return ""
	}
	return word[i:]
}

// quoteWord quotes a word for SplitCommand when it needs it.
func quoteWord(w string) string {
	if w != "" && !strings.ContainsAny(w, " \t\n'\"\\$`") {
		return w
	}
	return "'" + strings.ReplaceAll(w, "'", `'\''`) + "'"
}
