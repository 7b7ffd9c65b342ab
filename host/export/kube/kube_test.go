package kube

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"

	"github.com/pmdaemon/pmdaemon/host/config"
	"github.com/pmdaemon/pmdaemon/host/export"
	"github.com/pmdaemon/pmdaemon/host/export/exporttest"
)

const image = "registry.example/pmdaemon-apps:1"

// Decode reads a YAML stream strictly into the k8s.io/api types: each document through
// yaml.YAMLToJSON and a json.Decoder that refuses fields the type does not have.
func Decode(stream []byte) ([]any, error) {
	var objs []any
	for i, doc := range bytes.Split(stream, []byte("\n---\n")) {
		j, err := yaml.YAMLToJSON(doc)
		if err != nil {
			return nil, fmt.Errorf("document %d: %w", i, err)
		}
		var tm metav1.TypeMeta
		if err := json.Unmarshal(j, &tm); err != nil {
			return nil, fmt.Errorf("document %d: %w", i, err)
		}
		var obj any
		switch tm.APIVersion + " " + tm.Kind {
		case "apps/v1 Deployment":
			obj = &appsv1.Deployment{}
		case "apps/v1 StatefulSet":
			obj = &appsv1.StatefulSet{}
		case "v1 Service":
			obj = &corev1.Service{}
		default:
			return nil, fmt.Errorf("document %d: unexpected %s %s", i, tm.APIVersion, tm.Kind)
		}
		dec := json.NewDecoder(bytes.NewReader(j))
		dec.DisallowUnknownFields()
		if err := dec.Decode(obj); err != nil {
			return nil, fmt.Errorf("document %d (%s): %w", i, tm.Kind, err)
		}
		objs = append(objs, obj)
	}
	return objs, nil
}

// roundTrip exports src, decodes the YAML strictly into k8s.io/api's types, validates what
// came back, and writes it back through those types: the bytes must be the export's, so the
// YAML says exactly what the typed objects say, no more and no less.
func roundTrip(t *testing.T, src *export.Source) ([]any, []byte, export.Report) {
	t.Helper()
	out, report, err := Export(src, Options{Image: image})
	if err != nil {
		t.Fatal(err)
	}
	back, err := Decode(out)
	if err != nil {
		t.Fatalf("the YAML does not decode strictly into k8s.io/api types: %v\n%s", err, out)
	}
	if err := Validate(back); err != nil {
		t.Fatalf("the decoded objects are not valid: %v", err)
	}
	typed, err := typedYAML(back)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(typed, out) {
		t.Fatalf("the YAML is not what the k8s.io/api types write for the objects it decodes to:\n--- export\n%s\n--- typed\n%s", out, typed)
	}
	return back, out, report
}

// typedYAML writes k8s.io/api objects as the export did before it had its own types: each
// object's JSON through a map (what only the cluster fills in taken out: status,
// creationTimestamp), as YAML, separated by "---".
func typedYAML(objs []any) ([]byte, error) {
	var out bytes.Buffer
	for i, obj := range objs {
		if i > 0 {
			out.WriteString("---\n")
		}
		j, err := json.Marshal(obj)
		if err != nil {
			return nil, err
		}
		var m map[string]any
		if err := json.Unmarshal(j, &m); err != nil {
			return nil, err
		}
		delete(m, "status")
		stripCreation(m)
		y, err := yaml.Marshal(m)
		if err != nil {
			return nil, err
		}
		out.Write(y)
	}
	return out.Bytes(), nil
}

// stripCreation removes every "creationTimestamp": null (the object's and its pod
// template's).
func stripCreation(v any) {
	switch v := v.(type) {
	case map[string]any:
		if c, ok := v["creationTimestamp"]; ok && c == nil {
			delete(v, "creationTimestamp")
		}
		for _, e := range v {
			stripCreation(e)
		}
	case []any:
		for _, e := range v {
			stripCreation(e)
		}
	}
}

func TestGolden(t *testing.T) {
	for _, rel := range exporttest.Sources {
		name := strings.ReplaceAll(rel, "/", "-")
		t.Run(name, func(t *testing.T) {
			src := exporttest.Load(t, rel)
			objs, out, report := roundTrip(t, src)
			src.Merge(report)
			if len(objs) < len(src.Apps) {
				t.Errorf("%d objects for %d apps", len(objs), len(src.Apps))
			}
			exporttest.CheckGolden(t, filepath.Join("testdata", "golden", name+".yaml"), out)
			exporttest.CheckGolden(t, filepath.Join("testdata", "golden", name+".report"), exporttest.ReportText(src.Report))
		})
	}
}

func app(mod func(a *config.App)) config.App {
	a := config.NewApp()
	a.Name, a.Script, a.Cwd = "web", "./server", "/srv/web"
	mod(&a)
	if err := a.Validate(); err != nil {
		panic(err)
	}
	return a
}

func find[T any](t *testing.T, objs []any, name string) T {
	t.Helper()
	for _, o := range objs {
		if x, ok := o.(T); ok && reflect.ValueOf(x).Elem().FieldByName("Name").String() == name {
			return x
		}
	}
	var zero T
	t.Fatalf("no %T named %q", zero, name)
	return zero
}

func TestMapping(t *testing.T) {
	tests := []struct {
		name  string
		app   config.App
		check func(t *testing.T, objs []any, r export.Report)
	}{
		{"fixed port: a Deployment and a Service on it", app(func(a *config.App) { a.Port = "3000" }), func(t *testing.T, objs []any, r export.Report) {
			d := find[*appsv1.Deployment](t, objs, "web")
			c := d.Spec.Template.Spec.Containers[0]
			if *d.Spec.Replicas != 1 || c.Image != image || c.Ports[0].ContainerPort != 3000 || c.WorkingDir != "/srv/web" || !reflect.DeepEqual(c.Command, []string{"/srv/web/server"}) {
				t.Errorf("deployment %+v", d.Spec)
			}
			if !hasEnv(c, "PORT", "3000") || !hasEnv(c, "NODE_APP_INSTANCE", "0") || !hasEnv(c, "PMDAEMON_APP_NAME", "web") {
				t.Errorf("env %v", c.Env)
			}
			s := find[*corev1.Service](t, objs, "web")
			if s.Spec.Ports[0].Port != 3000 || s.Spec.Selector[NameLabel] != "web" {
				t.Errorf("service %+v", s.Spec)
			}
		}},
		{"auto: every pod on the range's first port", app(func(a *config.App) { a.Port, a.Instances = "auto:5000-5100", 3 }), func(t *testing.T, objs []any, r export.Report) {
			d := find[*appsv1.Deployment](t, objs, "web")
			c := d.Spec.Template.Spec.Containers[0]
			if *d.Spec.Replicas != 3 || !hasEnv(c, "PORT", "5000") || hasEnv(c, "NODE_APP_INSTANCE", "0") {
				t.Errorf("replicas %d env %v", *d.Spec.Replicas, c.Env)
			}
			if len(r.Changed) == 0 || !strings.Contains(strings.Join(r.Changed, "\n"), "no instance index") {
				t.Errorf("report %v", r.Changed)
			}
		}},
		{"no port: a Deployment alone", app(func(a *config.App) { a.Instances = 2 }), func(t *testing.T, objs []any, r export.Report) {
			if len(objs) != 1 {
				t.Errorf("%d objects", len(objs))
			}
		}},
		{"range: a StatefulSet and a Service per instance", app(func(a *config.App) { a.Port, a.Instances = "4000-4002", 3 }), func(t *testing.T, objs []any, r export.Report) {
			s := find[*appsv1.StatefulSet](t, objs, "web")
			if *s.Spec.Replicas != 3 || s.Spec.ServiceName != "web" || len(s.Spec.Template.Spec.Containers[0].Ports) != 3 {
				t.Errorf("statefulset %+v", s.Spec)
			}
			if find[*corev1.Service](t, objs, "web").Spec.ClusterIP != corev1.ClusterIPNone {
				t.Error("the governing Service is not headless")
			}
			for i := range 3 {
				svc := find[*corev1.Service](t, objs, fmt.Sprintf("web-%d", i))
				if svc.Spec.Ports[0].Port != int32(4000+i) || svc.Spec.Selector[PodNameLabel] != fmt.Sprintf("web-%d", i) {
					t.Errorf("service %d: %+v", i, svc.Spec)
				}
			}
		}},
		{"http health check: readiness and liveness", app(func(a *config.App) {
			a.Port = "3000"
			a.HealthCheck = config.NewHealthCheck()
			a.HealthCheck.URL, a.HealthCheck.Interval, a.HealthCheck.Retries = "http://127.0.0.1:{port}/health?deep=1", 1500*time.Millisecond, 2
		}), func(t *testing.T, objs []any, r export.Report) {
			c := find[*appsv1.Deployment](t, objs, "web").Spec.Template.Spec.Containers[0]
			p := c.ReadinessProbe
			if p == nil || c.LivenessProbe == nil || p.HTTPGet.Path != "/health?deep=1" || p.HTTPGet.Port.IntValue() != 3000 || p.PeriodSeconds != 2 || p.FailureThreshold != 2 {
				t.Errorf("probes %+v %+v", p, c.LivenessProbe)
			}
		}},
		{"health check that only reports: readiness only", app(func(a *config.App) {
			a.HealthCheck = config.NewHealthCheck()
			a.HealthCheck.Script, a.HealthCheck.Restart = "test -f /tmp/ok", false
		}), func(t *testing.T, objs []any, r export.Report) {
			c := find[*appsv1.Deployment](t, objs, "web").Spec.Template.Spec.Containers[0]
			if c.LivenessProbe != nil || c.ReadinessProbe == nil || !reflect.DeepEqual(c.ReadinessProbe.Exec.Command, []string{"test", "-f", "/tmp/ok"}) {
				t.Errorf("probes %+v %+v", c.ReadinessProbe, c.LivenessProbe)
			}
		}},
		{"memory limit and kill timeout", app(func(a *config.App) { a.MaxMemoryRestart, a.KillTimeout = 200<<20, 2500*time.Millisecond }), func(t *testing.T, objs []any, r export.Report) {
			spec := find[*appsv1.Deployment](t, objs, "web").Spec.Template.Spec
			mem := spec.Containers[0].Resources.Limits[corev1.ResourceMemory]
			if mem.Cmp(resource.MustParse("200Mi")) != 0 || *spec.TerminationGracePeriodSeconds != 3 {
				t.Errorf("memory %s grace %d", mem.String(), *spec.TerminationGracePeriodSeconds)
			}
		}},
		{"restart policy has no place: reported", app(func(a *config.App) { a.Autorestart = false }), func(t *testing.T, objs []any, r export.Report) {
			if !strings.Contains(strings.Join(r.Dropped, "\n"), "autorestart false") {
				t.Errorf("report %v", r.Dropped)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			objs, _, report := roundTrip(t, &export.Source{Name: "test", Apps: []config.App{tt.app}})
			tt.check(t, objs, report)
		})
	}
}

func hasEnv(c corev1.Container, name, value string) bool {
	for _, e := range c.Env {
		if e.Name == name {
			return e.Value == value
		}
	}
	return false
}

// The StatefulSet's wrapper really gives pod N its port and index: run it with /bin/sh as the
// container would, with the pod's hostname, around `env`.
func TestStatefulSetWrapperSetsPort(t *testing.T) {
	a := app(func(a *config.App) { a.Script, a.Port, a.Instances = "/usr/bin/env", "4000-4002", 3 })
	objs, _, _ := roundTrip(t, &export.Source{Name: "t", Apps: []config.App{a}})
	argv := find[*appsv1.StatefulSet](t, objs, "web").Spec.Template.Spec.Containers[0].Command
	for i := range 3 {
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Env = []string{fmt.Sprintf("HOSTNAME=web-%d", i), "PATH=/usr/bin:/bin"}
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%v: %v", argv, err)
		}
		for _, want := range []string{fmt.Sprintf("PORT=%d", 4000+i), fmt.Sprintf("NODE_APP_INSTANCE=%d", i), fmt.Sprintf("PM2_INSTANCE_ID=%d", i)} {
			if !strings.Contains(string(out), want+"\n") {
				t.Errorf("pod web-%d: no %s in\n%s", i, want, out)
			}
		}
	}
}

// Names: a pmdaemon name that is no DNS label is converted the same way every time, reported,
// kept apart from another that converts alike, and cut with a hash when too long.
func TestNames(t *testing.T) {
	long := strings.Repeat("service", 10)
	apps := []config.App{
		app(func(a *config.App) { a.Name = "Web_Front" }),
		app(func(a *config.App) { a.Name = "web.front" }),
		app(func(a *config.App) { a.Name = "9lives" }),
		app(func(a *config.App) { a.Name = long }),
		app(func(a *config.App) { a.Name = "--ünïcode--" }),
	}
	var runs [2][]string
	for run := range 2 {
		objs, report, err := Objects(&export.Source{Name: "t", Apps: apps}, Options{Image: image})
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range objs {
			name := o.(*Deployment).Metadata.Name
			if errs := validation.IsDNS1035Label(name); len(errs) > 0 || len(name) > maxName {
				t.Errorf("%q: %v", name, errs)
			}
			runs[run] = append(runs[run], name)
		}
		if len(report.Changed) < len(apps) {
			t.Errorf("conversions not all reported: %v", report.Changed)
		}
	}
	if !reflect.DeepEqual(runs[0], runs[1]) {
		t.Errorf("names differ between runs: %v, %v", runs[0], runs[1])
	}
	got := runs[0]
	if got[0] != "web-front" || got[1] == got[0] || !strings.HasPrefix(got[1], "web-front-") || got[2] != "app-9lives" || !strings.HasPrefix(got[3], "serviceservice") || got[4] != "n-code" {
		t.Errorf("names %v", got)
	}
}

// Validate catches what it is there for.
func TestValidateRefuses(t *testing.T) {
	good := func() []any {
		out, _, err := Export(&export.Source{Name: "t", Apps: []config.App{app(func(a *config.App) { a.Port, a.Instances = "4000-4001", 2 })}}, Options{Image: image})
		if err != nil {
			t.Fatal(err)
		}
		objs, err := Decode(out)
		if err != nil {
			t.Fatal(err)
		}
		return objs
	}
	tests := []struct {
		name    string
		breakIt func(objs []any) []any
		want    string
	}{
		{"a name with capitals", func(o []any) []any { o[0].(*appsv1.StatefulSet).Name = "Web"; return o }, "name"},
		{"a selector that misses the pods", func(o []any) []any {
			o[0].(*appsv1.StatefulSet).Spec.Selector.MatchLabels[NameLabel] = "other"
			return o
		}, "does not match"},
		{"no governing Service", func(o []any) []any { return o[:1] }, "serviceName"},
		{"a port name over 15 characters", func(o []any) []any {
			o[0].(*appsv1.StatefulSet).Spec.Template.Spec.Containers[0].Ports[0].Name = "a-very-long-port-name"
			return o
		}, "port name"},
		{"an env name with '='", func(o []any) []any {
			c := &o[0].(*appsv1.StatefulSet).Spec.Template.Spec.Containers[0]
			c.Env = append(c.Env, corev1.EnvVar{Name: "A=B"})
			return o
		}, "env"},
		{"a Service name starting with a digit", func(o []any) []any { o[2].(*corev1.Service).Name = "1web"; return o }, "Service 1web"},
	}
	if err := Validate(good()); err != nil {
		t.Fatalf("the good objects: %v", err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Validate(tt.breakIt(good()))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Validate: %v; want an error with %q", err, tt.want)
			}
		})
	}
}

// The strict decoder refuses a field the types do not have.
func TestDecodeRefusesUnknownField(t *testing.T) {
	doc := "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: x\nspec:\n  replicaz: 2\n"
	if _, err := Decode([]byte(doc)); err == nil || !strings.Contains(err.Error(), `unknown field "replicaz"`) {
		t.Errorf("Decode: %v", err)
	}
}

// Quantity writes a memory limit as apimachinery's BinarySI quantity writes it.
func TestQuantityIsApimachinerys(t *testing.T) {
	for _, n := range []int64{1, 999, 1000, 1023, 1024, 1025, 1536, 2000, 300<<20 + 1, 200 << 20, 1536 << 20, 3 << 30, 5 << 40, 7 << 50, 1 << 62, 1<<63 - 1} {
		checkQuantity(t, n)
	}
}

func FuzzQuantity(f *testing.F) {
	for _, n := range []int64{1, 1000, 1024, 1536 << 20} {
		f.Add(n)
	}
	f.Fuzz(func(t *testing.T, n int64) {
		if n > 0 { // max_memory_restart is positive
			checkQuantity(t, n)
		}
	})
}

func checkQuantity(t *testing.T, n int64) {
	t.Helper()
	if got, want := Quantity(n), resource.NewQuantity(n, resource.BinarySI).String(); got != want {
		t.Fatalf("Quantity(%d) = %q; apimachinery writes %q", n, got, want)
	}
}

// envName takes what apimachinery's IsEnvVarName takes, and an app whose env name it does not
// take is refused with the name in the error.
func TestEnvNameIsApimachinerys(t *testing.T) {
	for _, s := range []string{"PORT", "my.env-name", "_x", "-x", ".x", "..x", ".", "..", "x..", "1x", "", "A B", "A=B", "ä", "a\x00"} {
		checkEnvName(t, s)
	}
	a := app(func(a *config.App) { a.Env = map[string]string{"1BAD": "x"} })
	if _, _, err := Export(&export.Source{Name: "t", Apps: []config.App{a}}, Options{Image: image}); err == nil || !strings.Contains(err.Error(), `env "1BAD"`) {
		t.Errorf("Export with env 1BAD: %v", err)
	}
}

func FuzzEnvName(f *testing.F) {
	for _, s := range []string{"PORT", "..x", "1x", "a.b"} {
		f.Add(s)
	}
	f.Fuzz(checkEnvName)
}

func checkEnvName(t *testing.T, s string) {
	if got, want := envName(s), len(validation.IsEnvVarName(s)) == 0; got != want {
		t.Fatalf("envName(%q) = %v; apimachinery says %v", s, got, want)
	}
}

// depends_on: a migration that others wait for to complete is an init container of their
// pods (a StatefulSet's too); every other dependency is reported, never dropped silently.
func TestDependsOn(t *testing.T) {
	migrate := app(func(a *config.App) { a.Name, a.Script, a.Autorestart = "migrate", "./migrate", false })
	db := app(func(a *config.App) { a.Name, a.Script, a.Port = "db", "./db", "5432" })
	server := app(func(a *config.App) {
		a.Name, a.Port, a.Instances = "server", "auto:3000-3100", 2
		a.DependsOn = []config.Dependency{{App: "migrate", Condition: config.DependCompleted}, {App: "db", Condition: config.DependStarted}}
	})
	shards := app(func(a *config.App) {
		a.Name, a.Port, a.Instances = "shards", "4000-4001", 2
		a.DependsOn = []config.Dependency{{App: "migrate", Condition: config.DependCompleted}}
	})
	objs, _, report := roundTrip(t, &export.Source{Name: "t", Apps: []config.App{server, migrate, db, shards}})
	for _, o := range objs {
		if d, ok := o.(*appsv1.Deployment); ok && d.Name == "migrate" {
			t.Error("migrate has a Deployment of its own")
		}
	}
	for _, spec := range []corev1.PodSpec{find[*appsv1.Deployment](t, objs, "server").Spec.Template.Spec, find[*appsv1.StatefulSet](t, objs, "shards").Spec.Template.Spec} {
		if len(spec.InitContainers) != 1 {
			t.Fatalf("init containers %+v", spec.InitContainers)
		}
		ic := spec.InitContainers[0]
		if ic.Name != "migrate" || ic.Image != image || !reflect.DeepEqual(ic.Command, []string{"/srv/web/migrate"}) || !hasEnv(ic, "NODE_APP_INSTANCE", "0") || spec.Containers[0].Name == "migrate" {
			t.Errorf("init container %+v", ic)
		}
	}
	if len(find[*appsv1.Deployment](t, objs, "db").Spec.Template.Spec.InitContainers) != 0 {
		t.Error("db got an init container")
	}
	joined := strings.Join(append(report.Changed, report.Dropped...), "\n")
	for _, want := range []string{`app "migrate" runs as an init container before server, shards`, "autorestart false: an init container that fails is run again", `app "server": depends_on db (started)`} {
		if !strings.Contains(joined, want) {
			t.Errorf("no line with %q in:\n%s", want, joined)
		}
	}
	if strings.Contains(joined, "a Deployment's pods are always restarted") {
		t.Errorf("migrate is reported as a Deployment:\n%s", joined)
	}
}
