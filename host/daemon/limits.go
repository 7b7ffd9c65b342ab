package daemon

import (
	"errors"
	"fmt"
	"net/http"
	"syscall"

	"github.com/pmdaemon/pmdaemon/host/api"
	"github.com/pmdaemon/pmdaemon/host/config"
	"github.com/pmdaemon/pmdaemon/host/supervisor"
)

// The API checks every request against the bounds of host/config before it reaches an
// operation, whoever sent it: the CLI and the loaders check the same numbers, but the socket is
// the daemon's real entry.

// fdReserve is kept for the daemon itself: its socket and clients, the state and log files,
// plugins. Spawns and health checks in progress take at most supervisor.InFlightFDs more.
const fdReserve = 256

// instanceFDs is what the daemon budgets for an app's instances, the descriptors they hold
// while they run (supervisor/fdgate.go): one pidfd each, a log writer's pidfd, the daemon's
// end of PM2's IPC channel, and the listening sockets the daemon holds for the app.
func instanceFDs(cfg config.App, instances int) int {
	each := 1
	if cfg.StampsLogs() {
		each++
	}
	if hasIPC(cfg) {
		each++
	}
	n := instances * each
	switch cfg.Socket {
	case config.SocketInstance:
		n += instances
	case config.SocketShared:
		n++
	}
	return n
}

// fdBudget is how many descriptors the daemon's open-file limit (RLIMIT_NOFILE) leaves for
// instances, and that limit.
func fdBudget() (int, uint64) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil || rl.Cur == ^uint64(0) { // RLIM_INFINITY
		return int(^uint(0) >> 1), rl.Cur
	}
	kept := uint64(fdReserve + supervisor.InFlightFDs)
	if rl.Cur <= kept {
		return 0, rl.Cur
	}
	return int(rl.Cur - kept), rl.Cur
}

// appUse is an app's instances after an operation; cfg nil means its configuration now.
type appUse struct {
	instances int
	cfg       *config.App
}

// checkBudget refuses an operation that would leave the daemon with more instances than its
// open-file limit can hold. change maps app names to their use after the operation.
func (d *Daemon) checkBudget(change map[string]appUse) error {
	d.mu.Lock()
	total, fds := 0, 0
	for name, a := range d.apps {
		if u, ok := change[name]; !ok {
			total += len(a.slots)
			fds += instanceFDs(*a.cfg, len(a.slots))
		} else if u.cfg == nil {
			u.cfg = a.cfg // an update replaces a.cfg, never changes it
			change[name] = u
		}
	}
	d.mu.Unlock()
	adding := 0
	for _, u := range change {
		adding += u.instances
		if u.cfg != nil {
			fds += instanceFDs(*u.cfg, u.instances)
		} else {
			fds += instanceFDs(config.App{}, u.instances) // refused later: no such app
		}
	}
	budget, limit := fdBudget()
	if fds > budget {
		return userErr("refused: the daemon would supervise %d instances (%d now, %d by this request) holding %d file "+
			"descriptors, more than its open-file limit of %d (RLIMIT_NOFILE) leaves for instances: at most %d "+
			"descriptors, after %d for itself and for starts and checks in progress; raise the limit (ulimit -n, or "+
			"LimitNOFILE= in the systemd unit) and restart the daemon, or run fewer instances",
			total+adding, total, adding, fds, limit, budget, fdReserve+supervisor.InFlightFDs)
	}
	return nil
}

// checkStart checks a start request as it arrives: the app's spec (names, counts, sizes) and
// the instance budget. where prefixes errors ("apps[3]: ") for start-many.
func (d *Daemon) checkStart(req api.StartRequest, where string, change map[string]appUse) error {
	if err := req.App.Validate(); err != nil {
		return userErr("%s%v", where, err)
	}
	d.mu.Lock()
	_, exists := d.apps[req.App.Name]
	d.mu.Unlock()
	if exists && req.IfExists != "update" {
		return nil // left as it is, or refused by the operation
	}
	change[req.App.Name] = appUse{req.App.Instances, &req.App}
	return nil
}

// checkStartOne is the check of POST /v1/start.
func (d *Daemon) checkStartOne(req api.StartRequest) error {
	change := map[string]appUse{}
	if err := d.checkStart(req, "", change); err != nil {
		return err
	}
	return d.checkBudget(change)
}

// checkStartMany is the check of POST /v1/start-many: at most config.MaxApps apps, each valid,
// all within the budget. Nothing starts unless every app passes.
func (d *Daemon) checkStartMany(req api.StartManyRequest) error {
	if len(req.Apps) > config.MaxApps {
		return userErr("a start-many request has %d apps; the limit is %d (split the ecosystem file)", len(req.Apps), config.MaxApps)
	}
	change := map[string]appUse{}
	for i, r := range req.Apps {
		if err := d.checkStart(r, fmt.Sprintf("apps[%d]: ", i), change); err != nil {
			return err
		}
	}
	if err := checkRequestDeps(req); err != nil {
		return err
	}
	return d.checkBudget(change)
}

// checkTarget is the check of stop, restart, reload and delete: the instances override is
// bounded like an app's instances, and must fit the budget.
func (d *Daemon) checkTarget(req api.TargetRequest) error {
	if req.Instances > config.MaxInstances {
		return userErr("instances %d is too many (at most %d)", req.Instances, config.MaxInstances)
	}
	if req.Instances <= 0 {
		return nil
	}
	d.mu.Lock()
	_, exists := d.apps[req.Target]
	d.mu.Unlock()
	if !exists {
		return nil // an id or all is refused by the operation, with --instances
	}
	return d.checkBudget(map[string]appUse{req.Target: {instances: req.Instances}})
}

// bodyTooLarge answers a request whose body passed config.MaxRequestBody.
func bodyTooLarge(w http.ResponseWriter, err error) bool {
	var mbe *http.MaxBytesError
	if !errors.As(err, &mbe) {
		return false
	}
	writeErr(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body is larger than %d MiB, the daemon's limit "+
		"for one request (a start-many request carries every app of an ecosystem file: split the file)", mbe.Limit>>20))
	return true
}
