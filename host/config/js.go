package config

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Bounds of reading a JavaScript ecosystem file: node runs the user's code, which may loop or
// print without end.
const (
	JSTimeout    = 10 * time.Second
	MaxJSOutput  = 4 << 20
	jsResultMark = "\x00pmdaemon-ecosystem\x00"
)

// jsLoader is run as `node -e jsLoader FILE`. It loads FILE as PM2 does (require for .js and
// .cjs, import() for .mjs and for ES modules require refuses), takes module.exports, or the
// default export of an ES module, or its named exports when it has no default
// (`export const apps = [...]`), and prints it as JSON after a mark and R, so that what the file itself
// prints is not taken for the result. JSON.stringify drops functions and undefined, as PM2's
// own serialisation of the config does. An error is printed after the mark and E, as
// {"error": message, "at": "line"}.
const jsLoader = `
const file = process.argv[1];
const mark = ` + "`\\u0000pmdaemon-ecosystem\\u0000`" + `;
const place = (e) => {
  const stack = String((e && e.stack) || '');
  const first = stack.split('\n')[0];
  if (first.startsWith(file + ':')) return first.slice(file.length + 1);
  const m = stack.match(new RegExp('\\(?' + file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&') + ':(\\d+):\\d+'));
  return m ? m[1] : '';
};
const exported = (ns) => (ns.default !== undefined ? ns.default : ns);
const done = (v) => {
  if (v && typeof v === 'object' && v.__esModule && 'default' in v) v = v.default;
  process.stdout.write(mark + 'R' + JSON.stringify(v === undefined ? null : v));
};
const fail = (e) => {
  process.stdout.write(mark + 'E' + JSON.stringify({error: String((e && e.message) || e), at: place(e)}));
};
(async () => {
  const url = require('url').pathToFileURL(file).href;
  if (file.endsWith('.mjs')) return done(exported(await import(url)));
  try {
    return done(require(file));
  } catch (e) {
    if (!e || e.code !== 'ERR_REQUIRE_ESM') throw e;
  }
  done(exported(await import(url)));
})().catch(fail);
`

// isJSEcosystem tells whether a file is read by evaluating it with node.
func isJSEcosystem(path string) bool {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".js", ".cjs", ".mjs":
		return true
	}
	return false
}

// evalJS runs a JavaScript ecosystem file with node, for at most timeout, and returns its
// config as JSON.
func evalJS(path string, timeout time.Duration) ([]byte, error) {
	name := filepath.Base(path)
	node, err := exec.LookPath("node")
	if err != nil {
		return nil, fmt.Errorf("%s needs node to be read: install nodejs, or convert it to JSON", name)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "-e", jsLoader, abs)
	cmd.Dir = filepath.Dir(abs)
	// Its own process group, so that a timeout also ends what the file started.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = time.Second
	out := &capped{max: MaxJSOutput}
	errOut := &capped{max: 64 << 10}
	cmd.Stdout, cmd.Stderr = out, errOut
	runErr := cmd.Run()
	switch {
	case ctx.Err() != nil:
		return nil, fmt.Errorf("%s: node did not finish reading it within %s (does it wait for something?)", name, timeout)
	case out.over:
		return nil, fmt.Errorf("%s: node printed more than %d MiB while reading it", name, MaxJSOutput>>20)
	}
	i := bytes.LastIndex(out.buf.Bytes(), []byte(jsResultMark))
	if i < 0 {
		msg := strings.TrimSpace(errOut.buf.String())
		if msg == "" && runErr != nil {
			msg = runErr.Error()
		}
		return nil, fmt.Errorf("%s: node gave no config: %s", name, lastLines(msg, 5))
	}
	result := out.buf.Bytes()[i+len(jsResultMark):]
	if bytes.HasPrefix(result, []byte("E")) {
		var failed struct {
			Error string `json:"error"`
			At    string `json:"at"`
		}
		if err := json.Unmarshal(result[1:], &failed); err != nil {
			return nil, fmt.Errorf("%s: node failed to read it, and its error is unreadable: %v", name, err)
		}
		if failed.At != "" {
			return nil, fmt.Errorf("%s:%s: %s", name, failed.At, failed.Error)
		}
		return nil, fmt.Errorf("%s: %s", name, failed.Error)
	}
	result = bytes.TrimPrefix(result, []byte("R"))
	// A file that never sets module.exports exports {}.
	if r := string(bytes.TrimSpace(result)); r == "null" || r == "{}" {
		return nil, fmt.Errorf("%s exports nothing: write module.exports = {apps: [...]} (or export default for .mjs)", name)
	}
	return result, nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// capped keeps up to max bytes and remembers that more came.
type capped struct {
	buf  bytes.Buffer
	max  int
	over bool
}

func (c *capped) Write(p []byte) (int, error) {
	if room := c.max - c.buf.Len(); len(p) > room {
		c.buf.Write(p[:max(0, room)])
		c.over = true
		return 0, errors.New("output limit reached")
	}
	return c.buf.Write(p)
}

// IsEcosystemFile tells whether a path names a JSON, JSON5 or JavaScript ecosystem file
// rather than a program: what `start FILE` starts as a file of apps. PM2's rule: .json,
// .json5, .yml and .yaml, and JavaScript named *.config.js, *.config.cjs or *.config.mjs; pmdaemon also takes
// a .js, .cjs or .mjs with "ecosystem" or "pm2" in its name. Any other JavaScript file is an
// app (`start server.mjs` runs a server), as it is for PM2. `run FILE` reads any JavaScript
// file as an ecosystem file (IsJavaScript).
func IsEcosystemFile(path string) bool {
	base := strings.ToLower(filepath.Base(path))
	switch ext := filepath.Ext(base); ext {
	case ".json", ".json5", ".yml", ".yaml":
		return true
	case ".js", ".cjs", ".mjs":
		return strings.HasSuffix(base, ".config"+ext) || strings.Contains(base, "ecosystem") || strings.Contains(base, "pm2")
	}
	return false
}

// IsJavaScript tells whether path is a .js, .cjs or .mjs file, which `run` evaluates with node.
func IsJavaScript(path string) bool {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".js", ".cjs", ".mjs":
		return true
	}
	return false
}
