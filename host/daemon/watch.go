package daemon

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/pmdaemon/pmdaemon/host/config"
)

// watchConf is what one app's watcher watches; a change of it makes a new watcher.
type watchConf struct {
	root   string // the app's cwd: watched paths and ignore globs are relative to it
	paths  []string
	ignore []string
	delay  time.Duration
}

func (c watchConf) equal(o watchConf) bool {
	return c.root == o.root && slices.Equal(c.paths, o.paths) && slices.Equal(c.ignore, o.ignore) && c.delay == o.delay
}

// watchLoop keeps one file watcher for each app with watch that has an instance wanted, and
// none for the others: every tick it starts, replaces and closes watchers to match.
func (d *Daemon) watchLoop(tick time.Duration) {
	defer d.wg.Done()
	t := time.NewTicker(tick)
	defer t.Stop()
	watchers := map[string]*treeWatcher{}
	failed := map[string]watchConf{} // reported once until the app's watch settings change
	defer func() {
		for _, w := range watchers {
			w.Close()
		}
	}()
	for {
		d.watchTick(watchers, failed)
		select {
		case <-d.quit:
			return
		case <-t.C:
		}
	}
}

func (d *Daemon) watchTick(watchers map[string]*treeWatcher, failed map[string]watchConf) {
	want := d.watchConfs()
	for name, w := range watchers {
		if c, ok := want[name]; !ok || !c.equal(w.conf) {
			w.Close()
			delete(watchers, name)
		}
	}
	for name, c := range want {
		if watchers[name] != nil {
			continue
		}
		if f, ok := failed[name]; ok && f.equal(c) {
			continue
		}
		w, err := newTreeWatcher(c, func(rel string) {
			d.restartRunning(name, "watch: "+rel+" changed")
		})
		if err != nil {
			d.logger.Printf("%s: watch: %v", name, err)
			failed[name] = c
			continue
		}
		delete(failed, name)
		watchers[name] = w
	}
}

// watchConfs are the watch settings of the apps that watch and have an instance wanted.
func (d *Daemon) watchConfs() map[string]watchConf {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := map[string]watchConf{}
	for name, a := range d.apps {
		if len(a.cfg.Watch) == 0 || !slices.ContainsFunc(a.slots, func(s *slot) bool { return s.wanted }) {
			continue
		}
		out[name] = watchConf{root: a.cfg.Cwd, paths: a.cfg.Watch, ignore: a.cfg.IgnoreWatch, delay: a.cfg.Debounce()}
	}
	return out
}

// treeWatcher watches directory trees with inotify (fsnotify), adding the directories created
// in them, never entering an ignored one, and calls changed once a burst of changes has been
// quiet for the debounce delay.
type treeWatcher struct {
	conf    watchConf
	fs      *fsnotify.Watcher
	changed func(rel string)
	// files are the watched paths that are files: their directory is watched (an editor that
	// replaces a file would end a watch on the file itself) and only they count in it.
	files map[string]bool
	done  chan struct{}
	wg    sync.WaitGroup
}

func newTreeWatcher(c watchConf, changed func(rel string)) (*treeWatcher, error) {
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, err
	}
	w := &treeWatcher{conf: c, fs: fw, changed: changed, files: map[string]bool{}, done: make(chan struct{})}
	for _, p := range c.paths {
		abs := p
		if !filepath.IsAbs(abs) {
			abs = filepath.Join(c.root, p)
		}
		st, err := os.Stat(abs)
		switch {
		case err != nil:
			err = fmt.Errorf("watch path %s: %v", abs, errors.Unwrap(err))
		case st.IsDir():
			err = w.addTree(abs)
		default:
			w.files[abs] = true
			err = w.fs.Add(filepath.Dir(abs))
		}
		if err != nil {
			fw.Close()
			return nil, err
		}
	}
	w.wg.Add(1)
	go w.run()
	return w, nil
}

// addTree watches dir and every directory under it that is not ignored.
func (w *treeWatcher) addTree(dir string) error {
	return filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			if p == dir {
				return err
			}
			return nil // a directory gone or unreadable meanwhile: nothing to watch there
		}
		if !e.IsDir() {
			return nil
		}
		if p != dir && w.ignored(p) {
			return filepath.SkipDir
		}
		if err := w.fs.Add(p); err != nil {
			return fmt.Errorf("watch %s: %w", p, err)
		}
		return nil
	})
}

// ignored reports whether p is under an ignored path: a component named as a default
// (node_modules, .git), or a leading part of the path relative to the app's cwd, or one of its
// components, matching an ignore_watch glob.
func (w *treeWatcher) ignored(p string) bool {
	rel, err := filepath.Rel(w.conf.root, p)
	if err != nil || strings.HasPrefix(rel, "..") {
		rel = p
	}
	comps := strings.Split(filepath.ToSlash(rel), "/")
	for i, comp := range comps {
		if slices.Contains(config.WatchIgnoredByDefault, comp) {
			return true
		}
		prefix := strings.Join(comps[:i+1], "/")
		for _, g := range w.conf.ignore {
			g = strings.TrimPrefix(filepath.ToSlash(g), "./")
			if ok, _ := filepath.Match(g, prefix); ok {
				return true
			}
			if ok, _ := filepath.Match(g, comp); ok {
				return true
			}
		}
	}
	return false
}

// counts reports whether an event is a change of a watched, unignored path; a new directory
// is watched from now on.
func (w *treeWatcher) counts(ev fsnotify.Event) bool {
	if ev.Op == fsnotify.Chmod || w.ignored(ev.Name) {
		return false
	}
	if len(w.files) > 0 && w.files[ev.Name] {
		return true
	}
	if !w.inWatchedTree(ev.Name) { // a sibling of a watched file
		return false
	}
	if ev.Has(fsnotify.Create) {
		if st, err := os.Lstat(ev.Name); err == nil && st.IsDir() {
			_ = w.addTree(ev.Name) // best effort: what it could not add it cannot watch
		}
	}
	return true
}

// inWatchedTree reports whether p is under one of the watched directories (not merely in the
// directory of a watched file).
func (w *treeWatcher) inWatchedTree(p string) bool {
	for _, q := range w.conf.paths {
		if !filepath.IsAbs(q) {
			q = filepath.Join(w.conf.root, q)
		}
		if w.files[q] {
			continue
		}
		if p == q || strings.HasPrefix(p, q+string(filepath.Separator)) {
			return true
		}
	}
	return false
}

func (w *treeWatcher) run() {
	defer w.wg.Done()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	last := ""
	for {
		select {
		case <-w.done:
			return
		case ev, ok := <-w.fs.Events:
			if !ok {
				return
			}
			if w.counts(ev) {
				last = ev.Name
				timer.Reset(w.conf.delay)
			}
		case _, ok := <-w.fs.Errors:
			if !ok {
				return
			}
		case <-timer.C:
			rel, err := filepath.Rel(w.conf.root, last)
			if err != nil {
				rel = last
			}
			w.changed(rel)
		}
	}
}

// Close stops watching and waits for the watcher's goroutine.
func (w *treeWatcher) Close() {
	close(w.done)
	w.fs.Close()
	w.wg.Wait()
}
