package config

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/joho/godotenv"
)

// FileEnv reads the app's env_file files, in order (a later file overrides an earlier one),
// each relative to Cwd. Env is not applied here: the daemon puts it over these values, so a
// key in `env` wins over the same key in a file. Files are read at each launch, so a restart
// picks up an edited file.
func (a *App) FileEnv() (map[string]string, error) {
	if len(a.EnvFile) == 0 {
		return nil, nil
	}
	out := map[string]string{}
	for _, name := range a.EnvFile {
		p := name
		if !filepath.IsAbs(p) {
			p = filepath.Join(a.Cwd, p)
		}
		vars, err := ReadEnvFile(p)
		if err != nil {
			return nil, fmt.Errorf("app %q: env_file: %w", a.Name, err)
		}
		for k, v := range vars {
			out[k] = v
		}
	}
	return out, nil
}

// ReadEnvFile parses a dotenv file (KEY=value lines, `export`, quotes, # comments). An error
// names the file and, for a syntax error, the line.
func ReadEnvFile(path string) (map[string]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		if pe, ok := err.(*os.PathError); ok {
			err = pe.Err
		}
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	vars, err := godotenv.UnmarshalBytes(data)
	if err != nil {
		if line := envErrorLine(data, err.Error()); line > 0 {
			return nil, fmt.Errorf("%s:%d: %s", path, line, shortEnvError(err.Error()))
		}
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	for k := range vars {
		// godotenv lets spaces into a name ("a b=1" sets "a b"); no program can read that.
		if strings.ContainsAny(k, " \t") {
			return nil, fmt.Errorf("%s:%d: %q is not a variable name (letters, digits, _ and .)", path, keyLine(data, k), k)
		}
	}
	return vars, nil
}

// envErrorLine finds the line godotenv's error is about. Its messages carry the text from the
// failing statement on: for a bad name the rest of the file ("near ..."), for an unterminated
// quote the rest of that line; where that text begins is the line.
func envErrorLine(data []byte, msg string) int {
	data = bytes.ReplaceAll(data, []byte("\r\n"), []byte("\n"))
	if _, near, ok := strings.Cut(msg, " near "); ok {
		if rest, err := strconv.Unquote(near); err == nil && bytes.HasSuffix(data, []byte(rest)) {
			return 1 + bytes.Count(data[:len(data)-len(rest)], []byte("\n"))
		}
	}
	if _, frag, ok := strings.Cut(msg, "unterminated quoted value "); ok {
		if i := bytes.Index(data, []byte(frag)); i >= 0 {
			return 1 + bytes.Count(data[:i], []byte("\n"))
		}
	}
	return 0
}

// shortEnvError drops the rest of the file that godotenv quotes after "near".
func shortEnvError(msg string) string {
	if before, _, ok := strings.Cut(msg, " near "); ok {
		return before
	}
	return msg
}

// keyLine is the line where key is set, for an error about it (0 when not found).
func keyLine(data []byte, key string) int {
	for i, l := range strings.Split(string(data), "\n") {
		l = strings.TrimSpace(l)
		if rest, ok := strings.CutPrefix(l, "export "); ok {
			l = strings.TrimSpace(rest)
		}
		if rest, ok := strings.CutPrefix(l, key); ok && strings.ContainsAny(strings.TrimSpace(rest)[:min(1, len(strings.TrimSpace(rest)))], "=:") {
			return i + 1
		}
	}
	return 0
}

// CheckRunFiles checks what the run keys need of the system: the env_file files parse, and
// the watch paths exist. The daemon calls it at start, so a mistake is an error there rather
// than a line in the daemon's log.
func (a *App) CheckRunFiles() error {
	if _, err := a.FileEnv(); err != nil {
		return err
	}
	for _, p := range a.Watch {
		if !filepath.IsAbs(p) {
			p = filepath.Join(a.Cwd, p)
		}
		if _, err := os.Stat(p); err != nil {
			if pe, ok := err.(*os.PathError); ok {
				err = pe.Err
			}
			return fmt.Errorf("app %q: watch path %s: %v", a.Name, p, err)
		}
	}
	return nil
}
