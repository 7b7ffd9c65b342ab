package nomad

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/pmdaemon/pmdaemon/host/export"
)

// JSON writes job as the Nomad HTTP API takes it: {"Job": {...}}.
func JSON(job *Job) ([]byte, error) {
	out, err := json.MarshalIndent(struct{ Job *Job }{job}, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(out, '\n'), nil
}

// HCL writes job as a Nomad jobspec in HCL2, laid out as `hclwrite.Format` lays it out. The
// blocks and attributes are those of Nomad's jobspec (the `hcl` tags of nomad/api, which the
// tests decode it into), in the order of the API's fields, so the HCL and the JSON say the
// same thing; a value that HCL cannot hold is an error, not a silent change.
func HCL(job *Job) ([]byte, error) {
	w := &hclWriter{}
	var file hclBody
	body := file.block("job", w.label(job.ID))
	body.attr("type", w.str(job.Type))
	body.attr("datacenters", w.strs(job.Datacenters))
	for _, g := range job.TaskGroups {
		w.group(body.block("group", w.label(g.Name)), g)
	}
	if w.err != nil {
		return nil, w.err
	}
	var out strings.Builder
	file.write(&out, 0)
	return []byte(out.String()), nil
}

// hclWriter turns the job's values into HCL text, keeping the first value it cannot write.
type hclWriter struct{ err error }

func (w *hclWriter) group(body *hclBody, g *TaskGroup) {
	body.attr("count", strconv.Itoa(g.Count))
	for _, t := range g.Tasks {
		w.task(body.block("task", w.label(t.Name)), t)
	}
	if g.RestartPolicy != nil {
		w.restart(body.block("restart"), g.RestartPolicy)
	}
	for _, n := range g.Networks {
		network := body.block("network")
		// A static port is written as the jobspec has it, port "LABEL" { static = N }; Nomad
		// files it under ReservedPorts.
		for _, p := range n.ReservedPorts {
			network.block("port", w.label(p.Label)).attr("static", strconv.Itoa(p.Value))
		}
		for _, p := range n.DynamicPorts {
			network.block("port", w.label(p.Label))
		}
	}
}

func (w *hclWriter) restart(body *hclBody, r *RestartPolicy) {
	if r.Interval != nil {
		body.attr("interval", w.duration(*r.Interval))
	}
	body.attr("attempts", strconv.Itoa(r.Attempts))
	if r.Delay != nil {
		body.attr("delay", w.duration(*r.Delay))
	}
	body.attr("mode", w.str(r.Mode))
}

func (w *hclWriter) task(body *hclBody, t *Task) {
	body.attr("driver", w.str(t.Driver))
	if l := t.Lifecycle; l != nil {
		lifecycle := body.block("lifecycle")
		lifecycle.attr("hook", w.str(l.Hook))
		if l.Sidecar {
			lifecycle.attr("sidecar", "true")
		}
	}
	config := body.block("config")
	for _, k := range export.SortedKeys(t.Config) {
		switch v := t.Config[k].(type) {
		case string:
			config.attr(w.name(t.Name, "config", k), w.str(v))
		case []string:
			config.attr(w.name(t.Name, "config", k), w.strs(v))
		default:
			w.fail(fmt.Errorf("task %q: config %s is a %T, which this export does not write", t.Name, k, v))
		}
	}
	if len(t.Env) > 0 {
		env := body.block("env")
		for _, k := range export.SortedKeys(t.Env) {
			env.attr(w.name(t.Name, "env", k), w.str(t.Env[k]))
		}
	}
	for _, s := range t.Services {
		w.service(body.block("service"), s)
	}
	if t.Resources != nil {
		body.block("resources").attr("memory", strconv.Itoa(t.Resources.MemoryMB))
	}
	if t.RestartPolicy != nil {
		w.restart(body.block("restart"), t.RestartPolicy)
	}
	body.attr("kill_timeout", w.duration(t.KillTimeout))
	if l := t.LogConfig; l != nil {
		logs := body.block("logs")
		logs.attr("max_files", strconv.Itoa(l.MaxFiles))
		logs.attr("max_file_size", strconv.Itoa(l.MaxFileSizeMB))
	}
}

func (w *hclWriter) service(body *hclBody, s *Service) {
	body.attr("name", w.str(s.Name))
	if s.PortLabel != "" {
		body.attr("port", w.str(s.PortLabel))
	}
	for _, c := range s.Checks {
		check := body.block("check")
		check.attr("name", w.str(c.Name))
		check.attr("type", w.str(c.Type))
		if c.Command != "" {
			check.attr("command", w.str(c.Command))
		}
		if len(c.Args) > 0 {
			check.attr("args", w.strs(c.Args))
		}
		if c.Path != "" {
			check.attr("path", w.str(c.Path))
		}
		if c.Protocol != "" {
			check.attr("protocol", w.str(c.Protocol))
		}
		if c.PortLabel != "" {
			check.attr("port", w.str(c.PortLabel))
		}
		check.attr("interval", w.duration(c.Interval))
		check.attr("timeout", w.duration(c.Timeout))
		if c.CheckRestart != nil {
			check.block("check_restart").attr("limit", strconv.Itoa(c.CheckRestart.Limit))
		}
	}
	body.attr("provider", w.str(s.Provider))
}

func (w *hclWriter) fail(err error) {
	if w.err == nil {
		w.err = err
	}
}

// str is s as an HCL string whose references to Nomad's runtime variables stay live.
func (w *hclWriter) str(s string) string {
	q, err := quoteHCL(s, runtimeRefs)
	if err != nil {
		w.fail(err)
	}
	return q
}

// label is s as a block label, which HCL reads as a string with no references at all.
func (w *hclWriter) label(s string) string {
	q, err := quoteHCL(s, nil)
	if err != nil {
		w.fail(err)
	}
	return q
}

func (w *hclWriter) strs(list []string) string {
	quoted := make([]string, len(list))
	for i, s := range list {
		quoted[i] = w.str(s)
	}
	return "[" + strings.Join(quoted, ", ") + "]"
}

// duration is d as Nomad reads one: a string like "2.5s".
func (w *hclWriter) duration(d time.Duration) string { return w.str(d.String()) }

// name checks that key can be an attribute name in task's block (env, config): HCL's
// identifiers are narrower than environment variable names.
func (w *hclWriter) name(task, block, key string) string {
	if !hclIdentifier(key) {
		w.fail(fmt.Errorf("task %q: %s name %q cannot be written in HCL (a name there is ASCII letters, digits, '_' and '-', starting with a letter or '_'); use --format json", task, block, key))
	}
	return key
}

// hclIdentifier reports whether s is an HCL identifier of ASCII characters. HCL also takes
// Unicode letters, by tables of its own Unicode version; this export keeps to ASCII, which
// every version reads alike.
func hclIdentifier(s string) bool {
	if s == "" {
		return false
	}
	for i, c := range []byte(s) {
		letter := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_'
		if !letter && (i == 0 || !(c >= '0' && c <= '9' || c == '-')) {
			return false
		}
	}
	return true
}

// quoteHCL writes s as an HCL quoted string that reads back as s. It escapes what HCL's
// quoted strings escape (\\, \", \n, \r, \t; \u or \U for any other rune that is not
// printable), and doubles "${" and "%{" so that HCL reads them as text, not as a template
// (`hello ${USER}` is written "hello $${USER}": the HCL says what the JSON says, and Nomad
// interpolates both alike when the task starts). The references in live are the exception:
// they are written as references, which Nomad's parser leaves for the client to fill in.
// A "$" just before one is written \u0024, since "$${" would escape the reference.
func quoteHCL(s string, live []string) (string, error) {
	if !utf8.ValidString(s) {
		return "", fmt.Errorf("%q is not valid UTF-8, which HCL cannot hold; use --format json", s)
	}
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); {
		if ref := liveAt(s[i:], live); ref != "" {
			b.WriteString(ref)
			i += len(ref)
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		next := s[i+size:]
		i += size
		switch {
		case r == '\\':
			b.WriteString(`\\`)
		case r == '"':
			b.WriteString(`\"`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case (r == '$' || r == '%') && strings.HasPrefix(next, "{"):
			b.WriteRune(r)
			b.WriteRune(r)
		case r == '$' && liveAt(next, live) != "":
			b.WriteString(`\u0024`)
		case !unicode.IsPrint(r) && r < 0x10000:
			fmt.Fprintf(&b, `\u%04x`, r)
		case !unicode.IsPrint(r):
			fmt.Fprintf(&b, `\U%08x`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String(), nil
}

// liveAt returns the reference of live that s starts with, or "".
func liveAt(s string, live []string) string {
	for _, ref := range live {
		if strings.HasPrefix(s, ref) {
			return ref
		}
	}
	return ""
}

// hclBody is a body of attributes and blocks, in the order they are written.
type hclBody struct{ items []hclItem }

// hclItem is an attribute (value set) or a block (body set).
type hclItem struct {
	name   string // the attribute's name or the block's type
	value  string // HCL text
	labels []string
	body   *hclBody
}

func (b *hclBody) attr(name, value string) {
	b.items = append(b.items, hclItem{name: name, value: value})
}

// block appends a block with these (already quoted) labels and returns its body.
func (b *hclBody) block(typ string, labels ...string) *hclBody {
	body := &hclBody{}
	b.items = append(b.items, hclItem{name: typ, labels: labels, body: body})
	return body
}

// write lays b out as hclwrite.Format does: two spaces of indent a level, a blank line before
// every block but a body's first item, and the "=" of consecutive attributes aligned.
func (b *hclBody) write(out *strings.Builder, depth int) {
	indent := strings.Repeat("  ", depth)
	width := 0 // the longest name of the run of attributes being written
	for i, it := range b.items {
		if it.body != nil {
			if i > 0 {
				out.WriteByte('\n')
			}
			out.WriteString(indent + it.name)
			for _, l := range it.labels {
				out.WriteString(" " + l)
			}
			out.WriteString(" {\n")
			it.body.write(out, depth+1)
			out.WriteString(indent + "}\n")
			width = 0
			continue
		}
		if width == 0 {
			for _, next := range b.items[i:] {
				if next.body != nil {
					break
				}
				width = max(width, utf8.RuneCountInString(next.name))
			}
		}
		out.WriteString(indent + it.name + strings.Repeat(" ", width-utf8.RuneCountInString(it.name)) + " = " + it.value + "\n")
	}
}
