// Package nomad exports pmdaemon apps as one Nomad job: a group per app (or per instance, for a
// port range), a raw_exec task (docker with an image) running the app's command, ports as
// Nomad network ports, health checks as service checks, and the restart policy, kill timeout,
// memory limit and log rotation in Nomad's blocks. The job is built as small local types with
// the API's field names (job.go), then written as the API's JSON or as HCL2 (hcl.go).
package nomad

import (
	"fmt"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/pmdaemon/pmdaemon/host/config"
	"github.com/pmdaemon/pmdaemon/host/export"
	"github.com/pmdaemon/pmdaemon/host/ports"
)

// Options choose how tasks run.
type Options struct {
	// Image, when set, runs each task as a container of this image with the docker driver;
	// otherwise the command runs on the client with raw_exec, as pmdaemon runs it.
	Image string
}

const (
	target = "Nomad"
	// portLabel names an app's port in its group's network; the task reads it as
	// NOMAD_PORT_port. Each group has its own network, so one label serves every app.
	portLabel = "port"
	// healthLabel is a second port, for a health check URL on a port that is not the app's.
	healthLabel = "health"
	// allocIndex is Nomad's runtime index of an allocation in its group: the instance index.
	allocIndex = "${NOMAD_ALLOC_INDEX}"
	// portRef is the number of the app's port, filled in by the client.
	portRef = "${NOMAD_PORT_" + portLabel + "}"
	// minRestartInterval is the shortest restart interval Nomad accepts.
	minRestartInterval = 5 * time.Second
	// clientMaxKillTimeout is Nomad clients' default max_kill_timeout: a longer kill_timeout
	// is cut to it unless the client is configured otherwise.
	clientMaxKillTimeout = 30 * time.Second
	mib                  = 1 << 20
)

// Job builds the job for src's apps; the report lists what it could not carry over.
func Build(src *export.Source, o Options) (*Job, export.Report, error) {
	b := &builder{opts: o, names: export.Namer{Max: 63}}
	id := b.names.Label(src.Name, target, &export.Report{}) // the job's own name is no app: no note
	job := &Job{ID: id, Name: id, Type: "service", Datacenters: []string{"*"}}
	deps := export.PlanDepends(src.Apps, target, &b.report)
	prestart := map[string]*Task{} // by app name: the apps that run only before others
	for _, a := range src.Apps {
		if deps.Inside[a.Name] {
			t, err := b.prestartTask(a)
			if err != nil {
				return nil, b.report, err
			}
			prestart[a.Name] = t
		}
	}
	groups := map[string]string{}
	for _, a := range src.Apps {
		if deps.Inside[a.Name] {
			continue
		}
		gs, err := b.app(a)
		if err != nil {
			return nil, b.report, err
		}
		for _, g := range gs {
			var before []*Task
			for _, dep := range deps.Before[a.Name] {
				t := *prestart[dep.Name] // each group its own task, sharing what nothing changes
				before = append(before, &t)
			}
			g.Tasks = append(before, g.Tasks...)
		}
		for _, g := range gs {
			if other, taken := groups[g.Name]; taken {
				return nil, b.report, fmt.Errorf("%s and %s would both be Nomad group %q; rename one", export.AppLabel(other), export.AppLabel(a.Name), g.Name)
			}
			groups[g.Name] = a.Name
		}
		job.TaskGroups = append(job.TaskGroups, gs...)
	}
	return job, b.report, nil
}

type builder struct {
	opts   Options
	names  export.Namer
	report export.Report
}

// instance is one group's share of an app: how many allocations, on what port.
type instance struct {
	group string
	count int
	// static is the fixed port (0: none or dynamic); dynamic asks Nomad for a port.
	static  int
	dynamic bool
	port    string // PORT's value: the fixed port or Nomad's runtime variable
	index   string // NODE_APP_INSTANCE's value
}

// app maps one app: its port plan into groups, then a task and service per group.
func (b *builder) app(a config.App) ([]*TaskGroup, error) {
	argv, err := export.Command(a)
	if err != nil {
		return nil, err
	}
	plan, err := export.PortsOf(a)
	if err != nil {
		return nil, err
	}
	export.Losses(a, target, &b.report)
	b.notes(a)
	var insts []instance
	switch {
	case plan.None:
		insts = []instance{{group: a.Name, count: a.Instances, index: allocIndex}}
	case plan.Kind == ports.Single:
		p := plan.Fixed[0]
		insts = []instance{{group: a.Name, count: a.Instances, static: p, port: strconv.Itoa(p), index: allocIndex}}
		if a.Instances > 1 {
			b.report.Change("%s: %d instances share port %d: Nomad places them on %d different clients (a static port is held once per client)", export.AppLabel(a.Name), a.Instances, p, a.Instances)
		}
	case plan.Kind == ports.Range:
		for i, p := range plan.Fixed {
			insts = append(insts, instance{group: fmt.Sprintf("%s-%d", a.Name, i), count: 1, static: p, port: strconv.Itoa(p), index: strconv.Itoa(i)})
		}
	default: // auto
		insts = []instance{{group: a.Name, count: a.Instances, dynamic: true, port: portRef, index: allocIndex}}
		b.report.Change("%s: port %s becomes a dynamic port: Nomad picks it from its clients' dynamic range, not %d-%d, and the app reads it from PORT", export.AppLabel(a.Name), plan.Spec, plan.Spec.Start, plan.Spec.End)
	}
	check, err := b.check(a, plan)
	if err != nil {
		return nil, err
	}
	var service string
	if !plan.None || check != nil {
		service = b.names.Label(a.Name, target+" services", &b.report)
	}
	var groups []*TaskGroup
	for _, in := range insts {
		g := &TaskGroup{Name: in.group, Count: in.count, RestartPolicy: restartPolicy(a)}
		g.Networks = network(in, check)
		task := b.task(a, argv, in, g.Networks)
		if service != "" {
			task.Services = []*Service{serviceFor(service, plan.None, check)}
		}
		g.Tasks = []*Task{task}
		groups = append(groups, g)
	}
	return groups, nil
}

// prestartTask is an app that others wait for to complete (export.Depends), as a task that
// Nomad runs to completion before the main task of each of their allocations: pmdaemon's
// instance 0, under the app's own restart policy.
func (b *builder) prestartTask(a config.App) (*Task, error) {
	argv, err := export.Command(a)
	if err != nil {
		return nil, err
	}
	export.Losses(a, target, &b.report)
	b.notes(a)
	t := b.task(a, argv, instance{index: "0"}, nil)
	t.Lifecycle = &TaskLifecycle{Hook: "prestart"}
	t.RestartPolicy = restartPolicy(a)
	return t, nil
}

// task is the app's command with its environment and limits.
func (b *builder) task(a config.App, argv []string, in instance, nets []*NetworkResource) *Task {
	t := &Task{Name: a.Name, Env: export.InstanceEnv(a, in.port, in.index), KillTimeout: a.KillTimeout}
	if b.opts.Image != "" {
		t.Driver = "docker"
		t.Config = map[string]any{"image": b.opts.Image, "command": argv[0]}
		var labels []string
		for _, n := range nets {
			for _, p := range append(n.ReservedPorts, n.DynamicPorts...) {
				labels = append(labels, p.Label)
			}
		}
		if len(labels) > 0 {
			t.Config["ports"] = labels
		}
	} else {
		// raw_exec runs a host binary only by an absolute path; /usr/bin/env finds the
		// others (node, python3, a bare command) on the client's PATH, as pmdaemon does.
		t.Driver = "raw_exec"
		if !filepath.IsAbs(argv[0]) {
			argv = append([]string{"/usr/bin/env"}, argv...)
		}
		t.Config = map[string]any{"command": argv[0]}
	}
	if len(argv) > 1 {
		t.Config["args"] = argv[1:]
	}
	if a.Cwd != "" {
		t.Config["work_dir"] = a.Cwd
	}
	if a.MaxMemoryRestart > 0 {
		t.Resources = &Resources{MemoryMB: ceilDiv(a.MaxMemoryRestart, mib)}
	}
	if a.LogMaxSize > 0 || a.LogKeep > 0 {
		size, keep := a.LogLimits()
		t.LogConfig = &LogConfig{MaxFiles: keep, MaxFileSizeMB: ceilDiv(size, mib)}
	}
	return t
}

// notes reports what Nomad does differently for a.
func (b *builder) notes(a config.App) {
	app := export.AppLabel(a.Name)
	if a.KillTimeout > clientMaxKillTimeout {
		b.report.Change("%s: kill_timeout %s is longer than Nomad clients allow by default (max_kill_timeout 30s); raise it on the clients", app, a.KillTimeout)
	}
	if a.ExpBackoffRestartDelay > 0 {
		b.report.Change("%s: exp_backoff_restart_delay %s: Nomad's restart delay does not grow; every restart waits %s", app, a.ExpBackoffRestartDelay, a.ExpBackoffRestartDelay)
	}
	if a.WaitReady {
		b.report.Change("%s: wait_ready: a Nomad deployment waits for the service checks before it counts an allocation healthy (the update block's default)", app)
	}
	for _, k := range export.SortedKeys(a.Env) {
		if strings.Contains(a.Env[k], "${") {
			b.report.Change("%s: env %s contains ${...}, which Nomad interpolates when the task starts", app, k)
		}
	}
}

// restartPolicy maps pmdaemon's rule (max_restarts consecutive runs shorter than min_uptime,
// then errored) onto Nomad's (attempts within an interval, then the allocation fails): the
// interval is the time those short runs and their delays take, at least Nomad's minimum.
func restartPolicy(a config.App) *RestartPolicy {
	if !a.Autorestart {
		return &RestartPolicy{Attempts: 0, Mode: "fail"}
	}
	delay := a.RestartDelay
	if a.ExpBackoffRestartDelay > 0 {
		delay = a.ExpBackoffRestartDelay
	}
	interval := max(minRestartInterval, time.Duration(a.MaxRestarts)*(max(a.MinUptime, time.Second)+delay))
	return &RestartPolicy{Interval: &interval, Attempts: a.MaxRestarts, Delay: &delay, Mode: "fail"}
}

// network is the group's ports: the app's (static or dynamic) and a health check's own.
func network(in instance, c *healthCheck) []*NetworkResource {
	n := &NetworkResource{}
	switch {
	case in.static > 0:
		n.ReservedPorts = append(n.ReservedPorts, Port{Label: portLabel, Value: in.static})
	case in.dynamic:
		n.DynamicPorts = append(n.DynamicPorts, Port{Label: portLabel})
	}
	if c != nil && c.ownPort > 0 {
		n.ReservedPorts = append(n.ReservedPorts, Port{Label: healthLabel, Value: c.ownPort})
	}
	if len(n.ReservedPorts)+len(n.DynamicPorts) == 0 {
		return nil
	}
	return []*NetworkResource{n}
}

// healthCheck is an app's health check as a Nomad service check.
type healthCheck struct {
	check   ServiceCheck
	ownPort int    // a URL's port that is not the app's, held as healthLabel
	consul  bool   // a script check, which only Consul runs
	label   string // the port the check probes
}

func (b *builder) check(a config.App, plan export.Ports) (*healthCheck, error) {
	h := a.HealthCheck
	if h == nil {
		return nil, nil
	}
	c := &healthCheck{check: ServiceCheck{Interval: h.Interval, Timeout: h.Timeout}}
	if h.Restart {
		c.check.CheckRestart = &CheckRestart{Limit: h.Retries}
	} else {
		b.report.Change("%s: health_check restart false: the Nomad check reports the task unhealthy and restarts nothing (no check_restart)", export.AppLabel(a.Name))
	}
	if h.Script != "" {
		words, err := config.SplitCommand(strings.ReplaceAll(h.Script, "{port}", portRef))
		if err != nil || len(words) == 0 {
			return nil, fmt.Errorf("%s: health_check script %q: %v", export.AppLabel(a.Name), h.Script, err)
		}
		c.check.Type, c.check.Command, c.check.Args, c.consul = "script", words[0], words[1:], true
		b.report.Change("%s: health_check script: Nomad runs script checks only for services registered in Consul; the service uses provider \"consul\"", export.AppLabel(a.Name))
		if !plan.None {
			c.label = portLabel
		}
		return c, nil
	}
	u, err := url.Parse(strings.ReplaceAll(h.URL, "{port}", "1"))
	if err != nil {
		return nil, fmt.Errorf("%s: health_check url %q: %v", export.AppLabel(a.Name), h.URL, err)
	}
	c.check.Type, c.check.Path = "http", u.EscapedPath()
	if c.check.Path == "" {
		c.check.Path = "/"
	}
	if u.RawQuery != "" {
		c.check.Path += "?" + u.RawQuery
	}
	if u.Scheme == "https" {
		c.check.Protocol = "https"
	}
	port := 0
	if !strings.Contains(h.URL, "{port}") {
		port = 80
		if u.Scheme == "https" {
			port = 443
		}
		if p := u.Port(); p != "" {
			port, _ = strconv.Atoi(p)
		}
	}
	switch {
	case port == 0 || (plan.Kind == ports.Single && !plan.None && plan.Fixed[0] == port):
		c.label = portLabel
	default:
		c.ownPort, c.label = port, healthLabel
		b.report.Change("%s: health_check url %q probes port %d, which is not the app's: the group holds it as static port %q", export.AppLabel(a.Name), h.URL, port, healthLabel)
	}
	return c, nil
}

// serviceFor registers the app's instances under one name, with the health check if any.
func serviceFor(name string, noPort bool, c *healthCheck) *Service {
	s := &Service{Name: name, Provider: "nomad"}
	if !noPort {
		s.PortLabel = portLabel
	}
	if c != nil {
		check := c.check
		check.Name = name + "-health"
		if c.label != "" && c.label != s.PortLabel {
			if s.PortLabel == "" {
				s.PortLabel = c.label
			} else {
				check.PortLabel = c.label
			}
		}
		if c.consul {
			s.Provider = "consul"
		}
		s.Checks = []ServiceCheck{check}
	}
	return s
}

// runtimeRefs are the references to Nomad's runtime variables that the export writes: the
// HCL keeps them live (hcl.go).
var runtimeRefs = []string{portRef, allocIndex}

func ceilDiv(n, d int64) int { return int((n + d - 1) / d) }
