package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode"
)

const configShape = `{"output": "/etc/nginx/pmdaemon-upstreams.conf", "upstreams": {"web": "web_backend"}, "reload": ["nginx", "-s", "reload"]}`

// defaultServerParams are appended to every live server line. pmdaemon tells us which ports are
// live, so nginx's own passive failure marking must not take a server out of rotation for
// fail_timeout because it refused a connection while starting: with max_fails=0 nginx always
// tries it, and proxy_next_upstream moves a refused request on to the next server.
const defaultServerParams = "max_fails=0"

// config is a validated configuration.
type config struct {
	output       string            // absolute, clean
	upstreams    map[string]string // app name -> nginx upstream name
	reload       []string          // argv, nil for none
	reloadDesc   string            // the command as the user wrote it, for messages
	pidFile      string            // nginx's pid file, "" for none: absolute, clean
	host         string            // without brackets
	serverParams string
}

var (
	upstreamNameRE = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)
	hostNameRE     = regexp.MustCompile(`^[A-Za-z0-9_]([A-Za-z0-9_.-]*[A-Za-z0-9_])?$`)
)

var knownKeys = []string{"output", "upstreams", "reload", "pid_file", "host", "server_params"}

// parseConfig validates a configuration document; its errors are shown to the user as they are.
func parseConfig(doc json.RawMessage) (*config, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(doc, &top); err != nil || top == nil {
		return nil, fmt.Errorf("config must be a JSON object like %s", configShape)
	}
	var unknown []string
	for k := range top {
		if !slices.Contains(knownKeys, k) {
			unknown = append(unknown, strconv.Quote(k))
		}
	}
	if len(unknown) > 0 {
		slices.Sort(unknown)
		return nil, fmt.Errorf(`unknown config key(s) %s; known keys: "output", "upstreams", "reload", "pid_file", "host", "server_params"`,
			strings.Join(unknown, ", "))
	}
	present := func(k string) bool {
		raw, ok := top[k]
		return ok && !bytes.Equal(bytes.TrimSpace(raw), []byte("null"))
	}
	c := &config{host: "127.0.0.1", serverParams: defaultServerParams}

	if !present("output") {
		return nil, fmt.Errorf(`"output" is required: the absolute path of the file to write, e.g. %s`, configShape)
	}
	if err := json.Unmarshal(top["output"], &c.output); err != nil {
		return nil, errors.New(`"output" must be a string: the absolute path of the file to write`)
	}
	if !filepath.IsAbs(c.output) {
		return nil, fmt.Errorf(`"output" must be an absolute path, got %q`, c.output)
	}
	c.output = filepath.Clean(c.output)
	dir := filepath.Dir(c.output)
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return nil, fmt.Errorf(`the directory of "output" %s does not exist: %s`, c.output, dir)
	}
	if st, err := os.Stat(c.output); err == nil && !st.Mode().IsRegular() {
		return nil, fmt.Errorf(`"output" %s exists and is not a regular file`, c.output)
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf(`"output": %v`, err)
	}

	if !present("upstreams") {
		return nil, fmt.Errorf(`"upstreams" is required: an object mapping app names to nginx upstream names, e.g. %s`, configShape)
	}
	if err := json.Unmarshal(top["upstreams"], &c.upstreams); err != nil {
		return nil, errors.New(`"upstreams" must be an object mapping app names to nginx upstream names, e.g. {"web": "web_backend"}`)
	}
	if len(c.upstreams) == 0 {
		return nil, errors.New(`"upstreams" is empty; map at least one app to an nginx upstream, e.g. {"web": "web_backend"}`)
	}
	byUpstream := map[string]string{}
	for _, app := range sortedKeys(c.upstreams) {
		up := c.upstreams[app]
		if app == "" || strings.ContainsFunc(app, unicode.IsControl) {
			return nil, fmt.Errorf(`"upstreams" has a bad app name %q`, app)
		}
		if !upstreamNameRE.MatchString(up) {
			return nil, fmt.Errorf(`upstream name %q for app %q must match [A-Za-z0-9_.-]+`, up, app)
		}
		if other, dup := byUpstream[up]; dup {
			return nil, fmt.Errorf(`apps %q and %q both map to upstream %q; nginx needs one upstream block per name`, other, app, up)
		}
		byUpstream[up] = app
	}

	if present("reload") {
		var argv []string
		var line string
		switch {
		case json.Unmarshal(top["reload"], &argv) == nil:
			if len(argv) == 0 || argv[0] == "" {
				return nil, errors.New(`"reload" is an empty command; leave it out to never reload`)
			}
			c.reload, c.reloadDesc = argv, strings.Join(argv, " ")
		case json.Unmarshal(top["reload"], &line) == nil:
			if strings.TrimSpace(line) == "" {
				return nil, errors.New(`"reload" is an empty command; leave it out to never reload`)
			}
			c.reload, c.reloadDesc = []string{"/bin/sh", "-c", line}, line
		default:
			return nil, errors.New(`"reload" must be an array of strings (a command run directly, e.g. ["nginx", "-s", "reload"]) or a string (run with /bin/sh -c)`)
		}
	}

	if present("pid_file") {
		if err := json.Unmarshal(top["pid_file"], &c.pidFile); err != nil || !filepath.IsAbs(c.pidFile) {
			return nil, fmt.Errorf(`"pid_file" must be the absolute path of nginx's pid file (its "pid" directive, e.g. "/run/nginx.pid"), got %s`, truncate(string(top["pid_file"]), 80))
		}
		if c.reload == nil {
			return nil, errors.New(`"pid_file" is only used to wait for nginx after "reload"; give "reload" too, or leave "pid_file" out`)
		}
		c.pidFile = filepath.Clean(c.pidFile)
	}

	if present("host") {
		if err := json.Unmarshal(top["host"], &c.host); err != nil {
			return nil, errors.New(`"host" must be a string: the address nginx reaches the apps on, e.g. "127.0.0.1"`)
		}
		h := strings.TrimSuffix(strings.TrimPrefix(c.host, "["), "]")
		if ip := net.ParseIP(h); ip != nil {
			c.host = h
		} else if !hostNameRE.MatchString(c.host) {
			return nil, fmt.Errorf(`"host" must be an IP address or a host name, got %q`, c.host)
		}
	}

	if present("server_params") {
		if err := json.Unmarshal(top["server_params"], &c.serverParams); err != nil {
			return nil, errors.New(`"server_params" must be a string of nginx server parameters, e.g. "max_fails=0 weight=2"`)
		}
		c.serverParams = strings.Join(strings.Fields(c.serverParams), " ")
		if strings.ContainsAny(c.serverParams, ";{}#\"'\\") || strings.ContainsFunc(c.serverParams, unicode.IsControl) {
			return nil, fmt.Errorf(`"server_params" %q must not contain ; { } # quotes, backslashes or control characters`, c.serverParams)
		}
	}
	return c, nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
