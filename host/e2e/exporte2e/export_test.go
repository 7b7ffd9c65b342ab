// Package exporte2e drives `pmdaemon export` with the real binary: from the apps a real daemon
// runs, and its refusals of bad input.
package exporte2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2/hclparse"
	nomadapi "github.com/hashicorp/nomad/api"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/pmdaemon/pmdaemon/host/api"
	"github.com/pmdaemon/pmdaemon/host/e2e/harness"
)

// Export reads the running apps' saved configs from the daemon: the job and the objects
// carry their commands, ports, env and limits; a runtime port override is reported and not
// exported; the export changes nothing (same pids).
func TestExportRunningApps(t *testing.T) {
	t.Parallel()
	h := harness.NewHome(t)
	b := harness.FreePorts(t, 4)
	h.OK("start", harness.Echo, "--name", "web", "--instances", "2", "--port", harness.PortRange(b, b+1),
		"--env", "GREETING=hi", "--max-memory", "64M", "--health-url", "http://127.0.0.1:{port}/")
	h.OK("start", harness.Echo, "--name", "worker")
	h.WaitList(30*time.Second, "web and worker online", func(rows []api.Instance) bool {
		return harness.AllOnline("web", 2)(rows) && harness.AllOnline("worker", 1)(rows)
	})
	h.OK("restart", "web", "--port", harness.PortRange(b+2, b+3))
	rows := h.WaitList(30*time.Second, "web online on the override", func(rows []api.Instance) bool {
		return harness.AllOnline("web", 2)(rows) && slices.Equal(harness.PortsOf(rows, "web"), []int{b + 2, b + 3})
	})
	pids := append(harness.PidsOf(rows, "web"), harness.PidsOf(rows, "worker")...)

	r := h.Run("export", "nomad", "--format", "json")
	if r.Code != 0 {
		t.Fatalf("export nomad --format json: exit %d\n%s", r.Code, r.Stderr)
	}
	job := decodeJob(t, []byte(r.Stdout))
	if *job.ID != "pmdaemon" || len(job.TaskGroups) != 3 {
		t.Fatalf("job %s with %d groups; want pmdaemon with web-0, web-1, worker", *job.ID, len(job.TaskGroups))
	}
	for i, g := range job.TaskGroups[:2] {
		task := g.Tasks[0]
		port := g.Networks[0].ReservedPorts[0].Value
		if *g.Name != fmt.Sprintf("web-%d", i) || port != b+i || task.Env["PORT"] != fmt.Sprint(b+i) || task.Env["GREETING"] != "hi" ||
			task.Config["command"] != harness.Echo || *task.Resources.MemoryMB != 64 || task.Services[0].Checks[0].Path != "/" {
			t.Errorf("group %d: %s port %d task %+v", i, *g.Name, port, task)
		}
	}
	if g := job.TaskGroups[2]; *g.Name != "worker" || g.Networks != nil || g.Tasks[0].Config["command"] != harness.Echo {
		t.Errorf("worker group %+v", g)
	}
	if note := `app "web" runs with a runtime port override (` + harness.PortRange(b+2, b+3) + `); the export has its saved port ` + harness.PortRange(b, b+1); !strings.Contains(r.Stderr, note) {
		t.Errorf("stderr does not say %q:\n%s", note, r.Stderr)
	}

	hclOut := h.OK("export", "nomad")
	if _, diags := hclparse.NewParser().ParseHCL([]byte(hclOut), "job.hcl"); diags.HasErrors() {
		t.Fatalf("the HCL does not parse: %v\n%s", diags, hclOut)
	}
	if !strings.Contains(hclOut, fmt.Sprintf("static = %d", b+1)) {
		t.Errorf("the HCL has no static port %d:\n%s", b+1, hclOut)
	}

	r = h.Run("export", "kubernetes", "--image", "registry.example/apps:1", "--only", "web")
	if r.Code != 0 {
		t.Fatalf("export kubernetes: exit %d\n%s", r.Code, r.Stderr)
	}
	objs := decodeObjects(t, []byte(r.Stdout))
	sts, ok := objs[0].(*appsv1.StatefulSet)
	if !ok || len(objs) != 4 {
		t.Fatalf("want a StatefulSet and 3 Services for web alone, got %d objects, the first %T", len(objs), objs[0])
	}
	c := sts.Spec.Template.Spec.Containers[0]
	if *sts.Spec.Replicas != 2 || c.Image != "registry.example/apps:1" || c.Command[len(c.Command)-1] != harness.Echo || c.Ports[1].ContainerPort != int32(b+1) {
		t.Errorf("statefulset %+v", sts.Spec)
	}

	after := h.List()
	if got := append(harness.PidsOf(after, "web"), harness.PidsOf(after, "worker")...); !slices.Equal(got, pids) {
		t.Errorf("pids %v after export; were %v: export must change nothing", got, pids)
	}
}

// Bad input is refused before anything is read or started, with an error that says what is
// wrong; without a file and without a daemon there is nothing to export, and none is started.
func TestExportRefuses(t *testing.T) {
	t.Parallel()
	h := harness.NewHome(t)
	file := filepath.Join(t.TempDir(), "eco.json")
	if err := os.WriteFile(file, []byte(`{"apps": [{"name": "api", "script": "./api", "port": "3000"}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(t.TempDir(), "missing.json") // the flags are refused before the file is read
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"export", "swarm", missing}, `unknown export target "swarm": use nomad or kubernetes`},
		{[]string{"export", "nomad", missing, "--format", "yaml"}, `--format "yaml" is not known: use hcl or json`},
		{[]string{"export", "kubernetes", missing, "--format", "json", "--image", "x"}, "--format json is for nomad: a kubernetes export is always YAML"},
		{[]string{"export", "kubernetes", missing}, "export kubernetes needs --image IMAGE"},
		{[]string{"export", "nomad", file, "--only", "web"}, `eco.json has no app named "web" (it has: api)`},
		{[]string{"export", "nomad", missing}, "cannot read ecosystem file"},
		{[]string{"export", "nomad", "notes.txt"}, "notes.txt is not an ecosystem file"},
		{[]string{"export", "nomad"}, "no pmdaemon daemon runs at " + h.Dir + ": nothing to export"},
	}
	for _, tt := range tests {
		r := h.Run(tt.args...)
		if r.Code == 0 || r.Stdout != "" {
			t.Errorf("pmdaemon %s: exit %d, stdout %q; want a failure with nothing on stdout", strings.Join(tt.args, " "), r.Code, r.Stdout)
		}
		harness.ErrLike(t, r.Stderr, tt.want)
	}
	if _, err := os.Stat(filepath.Join(h.Dir, "daemon.pid")); err == nil {
		t.Error("export started a daemon")
	}
}

func decodeJob(t *testing.T, b []byte) *nomadapi.Job {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var doc struct{ Job *nomadapi.Job }
	if err := dec.Decode(&doc); err != nil || doc.Job == nil {
		t.Fatalf("the JSON does not decode strictly into api.Job: %v\n%s", err, b)
	}
	return doc.Job
}

func decodeObjects(t *testing.T, stream []byte) []any {
	t.Helper()
	var objs []any
	for _, doc := range bytes.Split(stream, []byte("\n---\n")) {
		j, err := yaml.YAMLToJSON(doc)
		if err != nil {
			t.Fatal(err)
		}
		var tm metav1.TypeMeta
		if err := json.Unmarshal(j, &tm); err != nil {
			t.Fatal(err)
		}
		var obj any
		switch tm.Kind {
		case "StatefulSet":
			obj = &appsv1.StatefulSet{}
		case "Deployment":
			obj = &appsv1.Deployment{}
		case "Service":
			obj = &corev1.Service{}
		default:
			t.Fatalf("unexpected kind %q", tm.Kind)
		}
		dec := json.NewDecoder(bytes.NewReader(j))
		dec.DisallowUnknownFields()
		if err := dec.Decode(obj); err != nil {
			t.Fatalf("%s does not decode strictly: %v", tm.Kind, err)
		}
		objs = append(objs, obj)
	}
	return objs
}
