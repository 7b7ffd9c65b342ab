package daemon

import (
	"errors"
	"time"

	"github.com/pmdaemon/pmdaemon/host/logs"
)

// rotateLoop rotates the instances' log files that have grown past their app's log_max_size.
// It runs on its own goroutine so that a big copy never delays metrics; apps write straight
// into their files and never wait for it (see package logs).
func (d *Daemon) rotateLoop(every time.Duration) {
	defer d.wg.Done()
	t := time.NewTicker(every)
	defer t.Stop()
	failed := map[string]string{} // path -> the error last logged for it
	for {
		select {
		case <-d.quit:
			return
		case <-t.C:
		}
		for path, r := range d.logFiles() {
			_, err := r.Rotate(path)
			switch {
			case err == nil:
				if failed[path] != "" {
					d.logger.Printf("log %s rotates again", path)
					delete(failed, path)
				}
			case errors.Is(err, logs.ErrBusy):
				// Someone holds the file (a flush, a reader): next tick.
			case failed[path] != err.Error():
				d.logger.Printf("rotating logs: %v", err)
				failed[path] = err.Error()
			}
		}
	}
}

// logFiles lists every instance's log files once (an app's out and err may be one file,
// and several instances may share an out_file) with the rotation its app asks for.
func (d *Daemon) logFiles() map[string]logs.Rotator {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := map[string]logs.Rotator{}
	for _, a := range d.apps {
		size, keep := a.cfg.LogLimits()
		for _, s := range a.slots {
			for _, p := range []string{d.outLog(a, s), d.errLog(a, s)} {
				out[p] = logs.Rotator{MaxSize: size, Keep: keep}
			}
		}
	}
	return out
}
