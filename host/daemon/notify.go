package daemon

import (
	"os"
	"strconv"
	"strings"
	"syscall"

	"github.com/pmdaemon/pmdaemon/host/notify"
	"github.com/pmdaemon/pmdaemon/host/supervisor"
)

// Every instance gets NOTIFY_SOCKET, systemd's sd_notify protocol (DESIGN §10): READY=1,
// STATUS=, STOPPING=1, WATCHDOG=1. A datagram counts only when the kernel's credentials show it
// comes from one of the instance's own processes, run by the daemon's user.

// openNotify makes the notify socket; without it instances get no NOTIFY_SOCKET, and ping says
// why.
func (d *Daemon) openNotify() {
	srv, err := notify.Listen(d.paths.Home)
	if err != nil {
		d.warnings = append(d.warnings, "no NOTIFY_SOCKET for the apps: "+err.Error())
		d.logger.Printf("no NOTIFY_SOCKET for the apps: %v", err)
		return
	}
	d.notifier = srv
}

// serveNotify receives the datagrams until closeNotify, whose Close waits for the serving
// goroutine to return.
func (d *Daemon) serveNotify() {
	if d.notifier == nil {
		return
	}
	go d.notifier.Serve(d.onNotify)
}

func (d *Daemon) closeNotify() {
	if d.notifier != nil {
		if err := d.notifier.Close(); err != nil {
			d.logger.Printf("closing the notify socket: %v", err)
		}
	}
}

// onNotify hands a datagram to the loop of the instance that sent it. It runs on the notify
// server's goroutine and must be quick.
func (d *Daemon) onNotify(from notify.Sender, m notify.Message) {
	if from.Uid != os.Geteuid() && from.Uid != 0 {
		return
	}
	if l := d.loopOfPid(from.Pid); l != nil {
		wasReady := l.State().Ready
		l.Notify(m)
		if st := l.State(); m.Ready && st.Ready && !wasReady {
			d.publishReady(l.Spec(), l.ID(), st)
		}
	}
}

// loopOfPid finds the loop whose instance pid belongs to: its main process, a member of its
// process group, or (cgroup mode) of its cgroup.
func (d *Daemon) loopOfPid(pid int) *supervisor.Loop {
	pgid, err := syscall.Getpgid(pid)
	if err != nil {
		pgid = 0
	}
	cg := cgroupOfPid(pid)
	d.mu.Lock()
	defer d.mu.Unlock()
	var byCgroup *supervisor.Loop
	for _, a := range d.apps {
		for _, s := range a.slots {
			if s.loop == nil {
				continue
			}
			main := s.loop.State().Pid
			if main > 0 && (main == pid || main == pgid) {
				return s.loop
			}
			if cg != "" && byCgroup == nil && strings.HasSuffix(d.cgroupOf(s), cg) {
				byCgroup = s.loop
			}
		}
	}
	return byCgroup
}

// cgroupOfPid is pid's cgroup v2 path ("/a/b"), "" when unknown or the root.
func cgroupOfPid(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cgroup")
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(b), "\n") {
		if p, ok := strings.CutPrefix(line, "0::"); ok && p != "/" {
			return p
		}
	}
	return ""
}
