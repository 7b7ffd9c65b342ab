// Package state persists the daemon's registry: every app's saved configuration, its live
// overrides, and each instance's id, port and process. Writes are atomic (temp file, fsync,
// rename, fsync of the directory); a file that cannot be read back is kept aside, never emptied.
package state

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/pmdaemon/pmdaemon/host/config"
)

// Version is the state file format; a newer one is refused rather than misread.
const Version = 1

// File is the state file's content.
type File struct {
	Version int      `json:"version"`
	NextID  int      `json:"next_id"`
	Apps    []App    `json:"apps"`
	Plugins []Plugin `json:"plugins,omitempty"`
}

// Plugin is a registered plugin; its binary is pinned by SHA256.
type Plugin struct {
	Name    string          `json:"name"`
	Path    string          `json:"path"`
	SHA256  string          `json:"sha256"`
	Kinds   []string        `json:"kinds"`
	Config  json.RawMessage `json:"config,omitempty"`
	Timeout time.Duration   `json:"timeout"`
	AddedAt time.Time       `json:"added_at"`
}

// App is one app in the registry.
type App struct {
	// Config is a pointer so that the daemon's snapshot of thousands of apps, taken under its
	// lock before every write, copies a pointer per app and not the whole config; the config
	// it points to is never changed (a change makes a new one).
	Config *config.App `json:"config"`
	// PortOverride is the live port spec set by restart/reload --port; "" when none.
	PortOverride string     `json:"port_override,omitempty"`
	CreatedAt    time.Time  `json:"created_at"`
	Instances    []Instance `json:"instances"`
	// Rollback is set while a rolling reload runs: what the app ran as before it. A daemon
	// that finds it at start-up puts the app back as it was, so that no reload is left half
	// done with `info` showing a spec the instances do not run.
	Rollback *Rollback `json:"rollback,omitempty"`
	// Sockets are the inodes of the listening sockets the daemon held for the app, by port:
	// the next daemon finds them in the app's processes and takes them back.
	Sockets map[int]uint64 `json:"sockets,omitempty"`
	// ConfigGen is not written: a number that the daemon gives Config, unique among its
	// configs and changed whenever Config changes, so that a Writer knows when to encode it
	// again. 0 means unknown: encoded on every write.
	ConfigGen uint64 `json:"-"`
}

// Rollback is an app's live port override and each instance's port (by index) before a
// rolling reload.
type Rollback struct {
	Override string `json:"override,omitempty"`
	Ports    []int  `json:"ports"`
}

// Instance is one process slot of an app.
type Instance struct {
	ID    int `json:"id"`
	Index int `json:"index"`
	// Wanted is what the user asked for: true from start until stop. A restarted daemon
	// runs (or takes back) every wanted instance.
	Wanted    bool      `json:"wanted"`
	Port      int       `json:"port,omitempty"`
	Pid       int       `json:"pid,omitempty"`
	PidStart  uint64    `json:"pid_start,omitempty"`
	StartedAt time.Time `json:"started_at,omitzero"`
	Restarts  int       `json:"restarts"`
	// Unstable counts consecutive unstable exits towards max_restarts.
	Unstable int `json:"unstable,omitempty"`
	// Transient marks a new instance of a reload in progress; the next daemon stops it.
	Transient bool   `json:"transient,omitempty"`
	Status    string `json:"status"`
	// Unit names the slot's cgroup and the marker in its processes' environment, so that the
	// next daemon can tell every process of the home to its slot.
	Unit string `json:"unit,omitempty"`
}

// Load reads path. A missing file is an empty registry. A file that does not parse is moved
// to path.corrupt-<time> and reported in the error, together with an empty registry, so the
// daemon can start and the user still has the bytes.
func Load(path string) (*File, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return &File{Version: Version}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("cannot read state file %s: %w", path, err)
	}
	var f File
	perr := decode(b, &f)
	if perr == nil {
		return &f, nil
	}
	aside := fmt.Sprintf("%s.corrupt-%s", path, time.Now().UTC().Format("20060102T150405.000"))
	for i := 1; ; i++ { // never overwrite an earlier aside file
		if _, err := os.Lstat(aside); errors.Is(err, fs.ErrNotExist) {
			break
		}
		aside = fmt.Sprintf("%s.corrupt-%s-%d", path, time.Now().UTC().Format("20060102T150405.000"), i)
	}
	if err := os.Rename(path, aside); err != nil {
		return nil, fmt.Errorf("state file %s is unreadable (%v) and could not be moved aside: %w", path, perr, err)
	}
	return &File{Version: Version}, &CorruptError{Path: path, Aside: aside, Err: perr}
}

// CorruptError reports a state file that was moved aside.
type CorruptError struct {
	Path, Aside string
	Err         error
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("state file %s is corrupt (%v); it was moved to %s and the daemon started with no apps", e.Path, e.Err, e.Aside)
}

func decode(b []byte, f *File) error {
	if len(bytes.TrimSpace(b)) == 0 {
		return errors.New("the file is empty")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(f); err != nil {
		return fmt.Errorf("invalid JSON: %w", err)
	}
	if err := config.EnsureEOF(dec); err != nil {
		return err
	}
	if f.Version != Version {
		return fmt.Errorf("unsupported state version %d (this pmdaemon reads version %d)", f.Version, Version)
	}
	seen := map[string]bool{}
	ids := map[int]bool{}
	for i, a := range f.Apps {
		if a.Config == nil {
			return fmt.Errorf("apps[%d]: no config", i)
		}
		if a.Config.Name == "" || seen[a.Config.Name] {
			return fmt.Errorf("apps[%d]: missing or duplicate name %q", i, a.Config.Name)
		}
		seen[a.Config.Name] = true
		for _, in := range a.Instances {
			if in.ID < 0 || ids[in.ID] || in.ID >= f.NextID {
				return fmt.Errorf("apps[%d] (%s): bad or duplicate instance id %d", i, a.Config.Name, in.ID)
			}
			ids[in.ID] = true
		}
	}
	return nil
}

// Save writes f to path atomically, encoding every app: a one-time Writer. A caller writing
// the same file again and again keeps its Writer, which encodes only what changed.
func Save(path string, f *File) error {
	return NewWriter(path).Write(f)
}

// WriteAtomic replaces path with data so that a reader, or a crash at any point, sees either
// the old content or the new one, never a mix. On any error the old file is left as it was.
func WriteAtomic(path string, data []byte, perm os.FileMode) error {
	return writeAtomic(path, perm, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// writeAtomic is WriteAtomic with the content written by fill, to the temporary file.
func writeAtomic(path string, perm os.FileMode, fill func(io.Writer) error) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, tempPrefix(path)+"*")
	if err != nil {
		return fmt.Errorf("cannot write %s: %w", path, err)
	}
	name := tmp.Name()
	fail := func(err error) error {
		tmp.Close()
		os.Remove(name)
		return fmt.Errorf("cannot write %s: %w", path, err)
	}
	if err := fill(tmp); err != nil {
		return fail(err)
	}
	if err := tmp.Chmod(perm); err != nil {
		return fail(err)
	}
	if err := tmp.Sync(); err != nil {
		return fail(err)
	}
	if err := tmp.Close(); err != nil {
		os.Remove(name)
		return fmt.Errorf("cannot write %s: %w", path, err)
	}
	if err := os.Rename(name, path); err != nil {
		os.Remove(name)
		return fmt.Errorf("cannot write %s: %w", path, err)
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// tempPrefix is how the temporary files of WriteAtomic(path) begin; os.CreateTemp puts
// decimal digits after it.
func tempPrefix(path string) string { return "." + filepath.Base(path) + ".tmp-" }

// RemoveStaleTemps removes the temporary files that writes of path by WriteAtomic left behind
// when the writer died between creating one and renaming it, and returns their paths. Only
// regular files named exactly as WriteAtomic names them are removed: symbolic links (which are
// not followed), directories and any other name are left alone. A write in progress looks the
// same, so only the one writer of path may call it, before it writes: the daemon, at start,
// holding its lock.
func RemoveStaleTemps(path string) ([]string, error) {
	dir, prefix := filepath.Dir(path), tempPrefix(path)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("cannot look for stale temporary files of %s: %w", path, err)
	}
	var removed []string
	var errs []error
	for _, e := range ents {
		rest, ok := strings.CutPrefix(e.Name(), prefix)
		if !ok || rest == "" || strings.Trim(rest, "0123456789") != "" || !e.Type().IsRegular() {
			continue
		}
		p := filepath.Join(dir, e.Name())
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, p)
	}
	return removed, errors.Join(errs...)
}

// Dump is what `save` writes and `resurrect` reads: the saved configurations, no live state.
type Dump struct {
	Apps []config.App `json:"apps"`
}

// LoadDump reads a dump file; errors name the file.
func LoadDump(path string) (*Dump, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("no saved process list at %s: run 'pmdaemon save' first", path)
		}
		return nil, err
	}
	var d Dump
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&d); err != nil {
		return nil, fmt.Errorf("dump file %s is not valid: %w", path, err)
	}
	if err := config.EnsureEOF(dec); err != nil {
		return nil, fmt.Errorf("dump file %s is not valid: %w", path, err)
	}
	return &d, nil
}
