// Package kube exports pmdaemon apps as Kubernetes objects (apps/v1 and core/v1): a
// Deployment per app, or a StatefulSet when its instances need distinct fixed ports, and a
// Service per port; probes from health checks, a memory limit from max_memory_restart. The
// objects are small local types with k8s.io/api's JSON names (objects.go), written as YAML.
package kube

import (
	"bytes"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/pmdaemon/pmdaemon/host/config"
	"github.com/pmdaemon/pmdaemon/host/export"
	"github.com/pmdaemon/pmdaemon/host/ports"
)

// Options say what the pods run.
type Options struct {
	// Image holds the apps; it is required: a pod runs containers, not host commands.
	Image string
}

const (
	target = "Kubernetes"
	// maxName keeps room in a StatefulSet's name for the controller's revision hash in a
	// 63-character label value, and for "-N" in per-instance Service names.
	maxName = 52
	// NameLabel selects an app's pods; PartOfLabel groups the export's objects.
	NameLabel   = "app.kubernetes.io/name"
	PartOfLabel = "app.kubernetes.io/part-of"
	// PodNameLabel is set by the StatefulSet controller on each pod: a Service of one instance
	// selects it.
	PodNameLabel = "statefulset.kubernetes.io/pod-name"
	portName     = "port"
)

// Export writes src's apps as a multi-document YAML stream.
func Export(src *export.Source, o Options) ([]byte, export.Report, error) {
	objs, report, err := Objects(src, o)
	if err != nil {
		return nil, report, err
	}
	var out bytes.Buffer
	for i, obj := range objs {
		if i > 0 {
			out.WriteString("---\n")
		}
		b, err := manifest(obj)
		if err != nil {
			return nil, report, err
		}
		out.Write(b)
	}
	return out.Bytes(), report, nil
}

// manifest is obj's YAML: through its JSON, so the field names are the JSON tags', and with
// the keys in order.
func manifest(obj any) ([]byte, error) {
	return yaml.Marshal(obj)
}

// Objects builds the objects for src's apps, in order.
func Objects(src *export.Source, o Options) ([]any, export.Report, error) {
	if strings.TrimSpace(o.Image) == "" {
		return nil, export.Report{}, fmt.Errorf("a Kubernetes export needs an image (--image)")
	}
	b := &builder{opts: o, names: export.Namer{Max: maxName}}
	b.partOf = b.names.Label(src.Name, target, &export.Report{}) // the export's name is no app: no note
	deps := export.PlanDepends(src.Apps, target, &b.report)
	inits := map[string]Container{} // by app name: the apps that run only before others
	for _, a := range src.Apps {
		if deps.Inside[a.Name] {
			c, err := b.initContainer(a)
			if err != nil {
				return nil, b.report, err
			}
			inits[a.Name] = c
		}
	}
	b.inits = map[string][]Container{}
	for name, before := range deps.Before {
		for _, dep := range before {
			b.inits[name] = append(b.inits[name], inits[dep.Name])
		}
	}
	var objs []any
	for _, a := range src.Apps {
		if deps.Inside[a.Name] {
			continue
		}
		more, err := b.app(a)
		if err != nil {
			return nil, b.report, err
		}
		objs = append(objs, more...)
	}
	b.report.Change("commands and working directories are this machine's paths: image %s must hold the apps at the same paths, with their interpreters on PATH", o.Image)
	return objs, b.report, nil
}

type builder struct {
	opts   Options
	names  export.Namer
	partOf string
	report export.Report
	// inits are, by app name, the init containers of its pods (export.Depends).
	inits map[string][]Container
}

// app maps one app: a workload for its pods and the Services of its ports.
func (b *builder) app(a config.App) ([]any, error) {
	argv, err := export.Command(a)
	if err != nil {
		return nil, err
	}
	plan, err := export.PortsOf(a)
	if err != nil {
		return nil, err
	}
	if err := checkEnv(a); err != nil {
		return nil, err
	}
	export.Losses(a, target, &b.report)
	b.notes(a, false)
	name := b.names.Label(a.Name, target, &b.report)
	labels := map[string]string{NameLabel: name, PartOfLabel: b.partOf}
	selector := map[string]string{NameLabel: name}
	c := Container{Name: name, Image: b.opts.Image, Command: argv, WorkingDir: a.Cwd}
	if a.MaxMemoryRestart > 0 {
		c.Resources.Limits = map[string]string{"memory": Quantity(a.MaxMemoryRestart)}
	}
	index := ""
	if a.Instances == 1 {
		index = "0"
	}
	app := export.AppLabel(a.Name)
	port := 0 // the port every pod listens on, when they share one
	switch {
	case plan.None:
	case plan.Kind == ports.Range:
		return b.statefulSet(a, name, labels, selector, c, plan)
	case plan.Kind == ports.Auto:
		port = plan.Spec.Start
		b.report.Change("%s: port %s: every pod has its own address, so each instance listens on %d (PORT) and Service %s balances over them", app, plan.Spec, port, name)
	default:
		port = plan.Fixed[0]
	}
	portValue := ""
	if port > 0 {
		portValue = strconv.Itoa(port)
		c.Ports = []ContainerPort{{Name: portName, ContainerPort: int32(port), Protocol: "TCP"}}
	}
	if a.Instances > 1 && (plan.None || port > 0) {
		b.report.Change("%s: the %d pods of a Deployment have no instance index: NODE_APP_INSTANCE and PM2_INSTANCE_ID are not set", app, a.Instances)
	}
	c.Env = envVars(export.InstanceEnv(a, portValue, index))
	if err := b.probes(a, &c, port); err != nil {
		return nil, err
	}
	d := &Deployment{
		TypeMeta: TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		Metadata: ObjectMeta{Name: name, Labels: labels},
		Spec: DeploymentSpec{
			Replicas: new(int32(a.Instances)),
			Selector: &LabelSelector{MatchLabels: selector},
			Template: b.podTemplate(a, labels, c),
		},
	}
	objs := []any{d}
	if port > 0 {
		objs = append(objs, service(name, labels, selector, port))
	}
	return objs, nil
}

// initContainer is an app that others wait for to complete (export.Depends), as an init
// container of each of their pods: Kubernetes runs it to completion before the app's
// container, as pmdaemon's instance 0.
func (b *builder) initContainer(a config.App) (Container, error) {
	argv, err := export.Command(a)
	if err != nil {
		return Container{}, err
	}
	if err := checkEnv(a); err != nil {
		return Container{}, err
	}
	export.Losses(a, target, &b.report)
	b.notes(a, true)
	c := Container{Name: b.names.Label(a.Name, target, &b.report), Image: b.opts.Image, Command: argv, WorkingDir: a.Cwd,
		Env: envVars(export.InstanceEnv(a, "", "0"))}
	if a.MaxMemoryRestart > 0 {
		c.Resources.Limits = map[string]string{"memory": Quantity(a.MaxMemoryRestart)}
	}
	return c, nil
}

// checkEnv refuses an env name the API server would.
func checkEnv(a config.App) error {
	for _, k := range export.SortedKeys(a.Env) {
		if !envName(k) {
			return fmt.Errorf("%s: env %q cannot be a Kubernetes environment variable name (letters, digits, '_', '-' and '.', not starting with a digit or \"..\"); rename it", export.AppLabel(a.Name), k)
		}
	}
	return nil
}

// statefulSet runs an app whose instances have distinct fixed ports (START-END): pod i is
// NAME-i, works out its port from its ordinal, and has a Service NAME-i of its own; a headless
// Service NAME gives the pods their stable names.
func (b *builder) statefulSet(a config.App, name string, labels, selector map[string]string, c Container, plan export.Ports) ([]any, error) {
	app := export.AppLabel(a.Name)
	start := plan.Fixed[0]
	// The pod's hostname is NAME-ORDINAL: the shell derives the instance index and PORT from
	// it, then runs the app's own argv.
	wrapper := fmt.Sprintf(`i=${HOSTNAME##*-}; export PORT=$((%d + i)) NODE_APP_INSTANCE=$i PM2_INSTANCE_ID=$i; exec "$0" "$@"`, start)
	c.Command = append([]string{"/bin/sh", "-c", wrapper}, c.Command...)
	for i, p := range plan.Fixed {
		c.Ports = append(c.Ports, ContainerPort{Name: fmt.Sprintf("%s-%d", portName, i), ContainerPort: int32(p), Protocol: "TCP"})
	}
	c.Env = envVars(export.InstanceEnv(a, "", ""))
	b.report.Change("%s: port %s: a StatefulSet whose pod %s-N listens on %d+N (PORT, set by /bin/sh from the pod's name: the image needs /bin/sh) behind Service %s-N", app, plan.Spec, name, start, name)
	if a.HealthCheck != nil {
		b.report.Drop("%s: health_check: each pod of the StatefulSet has its own port, and a probe has one port for all pods; no probe is set", app)
	}
	sts := &StatefulSet{
		TypeMeta: TypeMeta{APIVersion: "apps/v1", Kind: "StatefulSet"},
		Metadata: ObjectMeta{Name: name, Labels: labels},
		Spec: StatefulSetSpec{
			Replicas:            new(int32(a.Instances)),
			Selector:            &LabelSelector{MatchLabels: selector},
			Template:            b.podTemplate(a, labels, c),
			ServiceName:         name,
			PodManagementPolicy: "Parallel", // pmdaemon starts every instance at once
		},
	}
	headless := &Service{
		TypeMeta: TypeMeta{APIVersion: "v1", Kind: "Service"},
		Metadata: ObjectMeta{Name: name, Labels: labels},
		Spec:     ServiceSpec{ClusterIP: "None", Selector: selector},
	}
	objs := []any{sts, headless}
	for i, p := range plan.Fixed {
		pod := fmt.Sprintf("%s-%d", name, i)
		objs = append(objs, service(pod, labels, map[string]string{PodNameLabel: pod}, p))
	}
	return objs, nil
}

func (b *builder) podTemplate(a config.App, labels map[string]string, c Container) PodTemplateSpec {
	return PodTemplateSpec{
		Metadata: ObjectMeta{Labels: labels},
		Spec: PodSpec{
			InitContainers:                b.inits[a.Name],
			Containers:                    []Container{c},
			TerminationGracePeriodSeconds: new(seconds(a.KillTimeout)),
		},
	}
}

func service(name string, labels, selector map[string]string, port int) *Service {
	return &Service{
		TypeMeta: TypeMeta{APIVersion: "v1", Kind: "Service"},
		Metadata: ObjectMeta{Name: name, Labels: labels},
		Spec: ServiceSpec{
			Selector: selector,
			Ports:    []ServicePort{{Name: portName, Port: int32(port), TargetPort: int32(port), Protocol: "TCP"}},
		},
	}
}

// probes maps the health check: a readiness probe always (pmdaemon's check decides
// readiness), a liveness probe too when the check restarts the instance. port is the port
// every pod listens on (0: none).
func (b *builder) probes(a config.App, c *Container, port int) error {
	h := a.HealthCheck
	if h == nil {
		return nil
	}
	app := export.AppLabel(a.Name)
	p := &Probe{
		PeriodSeconds:    int32(seconds(h.Interval)),
		TimeoutSeconds:   int32(seconds(h.Timeout)),
		FailureThreshold: int32(h.Retries),
	}
	if h.Interval%time.Second != 0 || h.Timeout%time.Second != 0 {
		b.report.Change("%s: health_check interval %s / timeout %s: probes count whole seconds; rounded up", app, h.Interval, h.Timeout)
	}
	if h.Script != "" {
		words, err := config.SplitCommand(strings.ReplaceAll(h.Script, "{port}", strconv.Itoa(port)))
		if err != nil || len(words) == 0 {
			return fmt.Errorf("%s: health_check script %q: %v", app, h.Script, err)
		}
		p.Exec = &ExecAction{Command: words}
	} else {
		u, err := url.Parse(strings.ReplaceAll(h.URL, "{port}", strconv.Itoa(max(port, 1))))
		if err != nil {
			return fmt.Errorf("%s: health_check url %q: %v", app, h.URL, err)
		}
		probePort := port
		if !strings.Contains(h.URL, "{port}") {
			probePort = 80
			if u.Scheme == "https" {
				probePort = 443
			}
			if s := u.Port(); s != "" {
				probePort, _ = strconv.Atoi(s)
			}
		}
		path := u.EscapedPath()
		if path == "" {
			path = "/"
		}
		if u.RawQuery != "" {
			path += "?" + u.RawQuery
		}
		scheme := "HTTP"
		if u.Scheme == "https" {
			scheme = "HTTPS"
		}
		p.HTTPGet = &HTTPGetAction{Path: path, Port: int32(probePort), Scheme: scheme}
	}
	c.ReadinessProbe = p
	if h.Restart {
		live := *p // the same check: its handler is shared, and nothing changes either after this
		c.LivenessProbe = &live
	} else {
		b.report.Change("%s: health_check restart false: a readiness probe only, no liveness probe (an unhealthy pod gets no traffic and is not restarted)", app)
	}
	return nil
}

// notes reports what Kubernetes does differently for a, or not at all; init says a runs as an
// init container.
func (b *builder) notes(a config.App, init bool) {
	app := export.AppLabel(a.Name)
	if init && !a.Autorestart {
		b.report.Change("%s: autorestart false: an init container that fails is run again until it exits 0, and the pod's app container waits", app)
	} else if !a.Autorestart {
		b.report.Drop("%s: autorestart false: a Deployment's pods are always restarted; a Job (restartPolicy Never) runs a command that should not be", app)
	} else if a.MaxRestarts != config.DefaultMaxRestarts || a.MinUptime != config.DefaultMinUptime || a.RestartDelay > 0 || a.ExpBackoffRestartDelay > 0 {
		b.report.Drop("%s: max_restarts / min_uptime / restart_delay / exp_backoff_restart_delay: Kubernetes restarts a failing container without limit, after its own growing delay (CrashLoopBackOff, 10s doubling up to 5m)", app)
	}
	if a.LogMaxSize > 0 || a.LogKeep > 0 {
		b.report.Drop("%s: log_max_size / log_keep: the kubelet rotates container logs, per node (containerLogMaxSize, containerLogMaxFiles)", app)
	}
	if a.MaxMemoryRestart > 0 {
		b.report.Change("%s: max_memory_restart %s becomes the container's memory limit: over it the kernel kills the container (OOMKilled) and Kubernetes restarts it", app, Quantity(a.MaxMemoryRestart))
	}
	if a.WaitReady {
		b.report.Change("%s: wait_ready: a rollout waits for the readiness probe (or, without a health check, for the container to start)", app)
	}
}

// envVars lists env in name order, so the output does not change from run to run.
func envVars(env map[string]string) []EnvVar {
	out := make([]EnvVar, 0, len(env))
	for _, k := range export.SortedKeys(env) {
		out = append(out, EnvVar{Name: k, Value: env[k]})
	}
	return out
}

// envName reports whether the API server takes s as an environment variable name
// (apimachinery's IsEnvVarName, which the tests hold it to).
func envName(s string) bool {
	if s == "" || s == "." || strings.HasPrefix(s, "..") || s[0] >= '0' && s[0] <= '9' {
		return false
	}
	for _, c := range []byte(s) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// seconds rounds d up to whole seconds, at least 1: what probes and grace periods count.
func seconds(d time.Duration) int64 {
	return max(1, int64((d+time.Second-1)/time.Second))
}
