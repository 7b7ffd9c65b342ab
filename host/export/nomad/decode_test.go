package nomad

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/big"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/hashicorp/nomad/api"
	"github.com/zclconf/go-cty/cty"
)

// DecodeJSON reads the API's {"Job": ...} strictly: a field the nomad/api types do not have
// is an error, as is trailing data.
func DecodeJSON(b []byte) (*api.Job, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var doc struct{ Job *api.Job }
	if err := dec.Decode(&doc); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, fmt.Errorf("trailing data after the job")
	}
	if doc.Job == nil {
		return nil, fmt.Errorf("no Job")
	}
	return doc.Job, nil
}

// runtimeVars are the runtime variables the HCL refers to (runtimeRefs), each evaluating to
// its own reference, as Nomad's parser leaves them: an HCL template that uses them reads back
// as the text the JSON form holds. Any other variable is an error.
var runtimeVars = &hcl.EvalContext{Variables: map[string]cty.Value{
	"NOMAD_PORT_port":   cty.StringVal("${NOMAD_PORT_port}"),
	"NOMAD_ALLOC_INDEX": cty.StringVal("${NOMAD_ALLOC_INDEX}"),
}}

// hclTag is a nomad/api field's `hcl` tag: the jobspec's name for it and whether it is an
// attribute, a block or the block's label.
type hclTag struct {
	name, kind string // kind: "attr", "block", "label"
}

func tagOf(f reflect.StructField) (hclTag, bool) {
	tag, ok := f.Tag.Lookup("hcl")
	if !ok || tag == "-" {
		return hclTag{}, false
	}
	name, kind, _ := strings.Cut(tag, ",")
	switch kind {
	case "block", "label":
	default: // "optional", "attr", "" are attributes
		kind = "attr"
	}
	return hclTag{name, kind}, true
}

// DecodeHCL parses a jobspec with hashicorp/hcl/v2 and reads it into the nomad/api types by
// their `hcl` tags, the names Nomad's jobspec parser reads: an attribute or block that no tag
// names is an error, so the HCL uses Nomad's schema and nothing else.
func DecodeHCL(src []byte) (*api.Job, error) {
	f, diags := hclparse.NewParser().ParseHCL(src, "job.nomad.hcl")
	if diags.HasErrors() {
		return nil, diags
	}
	body := f.Body.(*hclsyntax.Body)
	if len(body.Attributes) > 0 || len(body.Blocks) != 1 || body.Blocks[0].Type != "job" || len(body.Blocks[0].Labels) != 1 {
		return nil, fmt.Errorf("want exactly one job \"ID\" block at the top")
	}
	id := body.Blocks[0].Labels[0]
	job := &api.Job{ID: &id, Name: &id}
	if err := readStruct(body.Blocks[0].Body, reflect.ValueOf(job).Elem(), "job"); err != nil {
		return nil, err
	}
	return job, nil
}

func readStruct(body *hclsyntax.Body, v reflect.Value, where string) error {
	attrs, blocks := map[string]int{}, map[string]int{}
	t := v.Type()
	for i := range t.NumField() {
		tag, ok := tagOf(t.Field(i))
		if !ok || tag.name == "" {
			continue
		}
		switch tag.kind {
		case "attr":
			attrs[tag.name] = i
		case "block":
			blocks[tag.name] = i
		}
	}
	for name, attr := range body.Attributes {
		i, ok := attrs[name]
		if !ok {
			return fmt.Errorf("%s: attribute %q is not in Nomad's schema", where, name)
		}
		val, diags := attr.Expr.Value(runtimeVars)
		if diags.HasErrors() {
			return fmt.Errorf("%s.%s: %v", where, name, diags)
		}
		if err := setValue(v.Field(i), val); err != nil {
			return fmt.Errorf("%s.%s: %w", where, name, err)
		}
	}
	for _, blk := range body.Blocks {
		i, ok := blocks[blk.Type]
		if !ok {
			return fmt.Errorf("%s: block %q is not in Nomad's schema", where, blk.Type)
		}
		fv := v.Field(i)
		if t == reflect.TypeFor[api.NetworkResource]() && blk.Type == "port" {
			if _, static := blk.Body.Attributes["static"]; static {
				fv = v.FieldByName("ReservedPorts") // Nomad's parser files a static port there
			}
		}
		if err := readBlock(blk, fv, where+"."+blk.Type); err != nil {
			return err
		}
	}
	return nil
}

func readBlock(blk *hclsyntax.Block, fv reflect.Value, where string) error {
	switch fv.Kind() {
	case reflect.Map:
		if !fv.IsNil() {
			return fmt.Errorf("%s: the block appears twice", where)
		}
		fv.Set(reflect.MakeMap(fv.Type()))
		for name, attr := range blk.Body.Attributes {
			val, diags := attr.Expr.Value(runtimeVars)
			if diags.HasErrors() {
				return fmt.Errorf("%s.%s: %v", where, name, diags)
			}
			e := reflect.New(fv.Type().Elem()).Elem()
			if err := setValue(e, val); err != nil {
				return fmt.Errorf("%s.%s: %w", where, name, err)
			}
			fv.SetMapIndex(reflect.ValueOf(name), e)
		}
		if len(blk.Body.Blocks) > 0 {
			return fmt.Errorf("%s: holds blocks", where)
		}
		return nil
	case reflect.Pointer:
		if !fv.IsNil() {
			return fmt.Errorf("%s: the block appears twice", where)
		}
		fv.Set(reflect.New(fv.Type().Elem()))
		return fillBlock(blk, fv.Elem(), where)
	case reflect.Slice:
		et := fv.Type().Elem()
		e := reflect.New(et).Elem()
		target := e
		if et.Kind() == reflect.Pointer {
			e.Set(reflect.New(et.Elem()))
			target = e.Elem()
		}
		if err := fillBlock(blk, target, where); err != nil {
			return err
		}
		fv.Set(reflect.Append(fv, e))
		return nil
	}
	return fmt.Errorf("%s: a %s is no block", where, fv.Type())
}

// fillBlock sets the block's label and reads its body.
func fillBlock(blk *hclsyntax.Block, v reflect.Value, where string) error {
	n := 0
	t := v.Type()
	for i := range t.NumField() {
		if tag, ok := tagOf(t.Field(i)); ok && tag.kind == "label" {
			if n >= len(blk.Labels) {
				return fmt.Errorf("%s: a label is missing", where)
			}
			f := v.Field(i)
			if f.Kind() == reflect.Pointer {
				f.Set(reflect.New(f.Type().Elem()))
				f = f.Elem()
			}
			f.SetString(blk.Labels[n])
			n++
		}
	}
	if n != len(blk.Labels) {
		return fmt.Errorf("%s: %d labels, the schema has %d", where, len(blk.Labels), n)
	}
	return readStruct(blk.Body, v, where)
}

func setValue(fv reflect.Value, val cty.Value) error {
	if fv.Kind() == reflect.Pointer {
		fv.Set(reflect.New(fv.Type().Elem()))
		fv = fv.Elem()
	}
	if fv.Type() == reflect.TypeFor[time.Duration]() {
		if val.Type() != cty.String {
			return fmt.Errorf("a duration must be a string, got %s", val.Type().FriendlyName())
		}
		d, err := time.ParseDuration(val.AsString())
		if err != nil {
			return err
		}
		fv.SetInt(int64(d))
		return nil
	}
	switch fv.Kind() {
	case reflect.String:
		if val.Type() != cty.String {
			return fmt.Errorf("want a string, got %s", val.Type().FriendlyName())
		}
		fv.SetString(val.AsString())
	case reflect.Bool:
		if val.Type() != cty.Bool {
			return fmt.Errorf("want a bool, got %s", val.Type().FriendlyName())
		}
		fv.SetBool(val.True())
	case reflect.Int, reflect.Int64, reflect.Int32:
		if val.Type() != cty.Number {
			return fmt.Errorf("want a number, got %s", val.Type().FriendlyName())
		}
		n, acc := val.AsBigFloat().Int64()
		if acc != big.Exact {
			return fmt.Errorf("%s is not a whole number", val.AsBigFloat())
		}
		fv.SetInt(n)
	case reflect.Slice:
		if !val.Type().IsTupleType() && !val.Type().IsListType() {
			return fmt.Errorf("want a list, got %s", val.Type().FriendlyName())
		}
		out := reflect.MakeSlice(fv.Type(), 0, val.LengthInt())
		for it := val.ElementIterator(); it.Next(); {
			_, ev := it.Element()
			e := reflect.New(fv.Type().Elem()).Elem()
			if err := setValue(e, ev); err != nil {
				return err
			}
			out = reflect.Append(out, e)
		}
		fv.Set(out)
	case reflect.Interface:
		// A driver's config: what encoding/json would make of the same value.
		var x any
		switch {
		case val.Type() == cty.String:
			x = val.AsString()
		case val.Type() == cty.Bool:
			x = val.True()
		case val.Type() == cty.Number:
			x, _ = val.AsBigFloat().Float64()
		case val.Type().IsTupleType() || val.Type().IsListType():
			var list []any
			for it := val.ElementIterator(); it.Next(); {
				_, ev := it.Element()
				e := reflect.New(reflect.TypeFor[any]()).Elem()
				if err := setValue(e, ev); err != nil {
					return err
				}
				list = append(list, e.Interface())
			}
			x = list
		default:
			return fmt.Errorf("a %s has no JSON form here", val.Type().FriendlyName())
		}
		fv.Set(reflect.ValueOf(&x).Elem())
	default:
		return fmt.Errorf("cannot set a %s", fv.Type())
	}
	return nil
}

// checkRestart applies Nomad's rules for a restart policy (a group's or a task's).
func checkRestart(bad func(string, ...any), where string, r *api.RestartPolicy) {
	if r == nil {
		return
	}
	if r.Mode == nil || (*r.Mode != "fail" && *r.Mode != "delay") {
		bad("%s: restart mode %v", where, r.Mode)
		return
	}
	if r.Attempts != nil && *r.Attempts == 0 && *r.Mode != "fail" {
		bad("%s: 0 attempts need mode fail", where)
	}
	if r.Interval != nil && *r.Interval < 5*time.Second {
		bad("%s: restart interval %s is under 5s", where, *r.Interval)
	}
	if r.Interval != nil && r.Delay != nil && time.Duration(*r.Attempts)*(*r.Delay) > *r.Interval {
		bad("%s: %d restarts with delay %s do not fit in interval %s", where, *r.Attempts, *r.Delay, *r.Interval)
	}
}

// serviceName is Nomad's rule for service names (RFC 1123 label, at most 63 characters).
var serviceName = regexp.MustCompile(`^(?i:[a-z0-9]|[a-z0-9][a-z0-9\-]{0,61}[a-z0-9])$`)

// CheckRules applies the rules Nomad's server checks at registration that this export can
// break (nomad/structs, which holds them, is not under an open-source licence to import):
// unique group and task names, restart intervals, service names and port labels, check types
// per provider, static ports, raw_exec's absolute command.
func CheckRules(job *api.Job) error {
	var errs []string
	bad := func(format string, a ...any) { errs = append(errs, fmt.Sprintf(format, a...)) }
	if job.ID == nil || *job.ID == "" || strings.ContainsAny(*job.ID, " \x00") {
		bad("job ID %v is empty or has a space", job.ID)
	}
	groups := map[string]bool{}
	for _, g := range job.TaskGroups {
		name := *g.Name
		if groups[name] {
			bad("group %q twice", name)
		}
		groups[name] = true
		if g.Count == nil || *g.Count < 0 {
			bad("group %q: count unset or negative", name)
		}
		checkRestart(bad, "group "+strconv.Quote(name), g.RestartPolicy)
		labels := map[string]bool{}
		statics := map[int]bool{}
		for _, n := range g.Networks {
			for _, p := range append(append([]api.Port(nil), n.ReservedPorts...), n.DynamicPorts...) {
				if labels[p.Label] {
					bad("group %q: port label %q twice", name, p.Label)
				}
				labels[p.Label] = true
			}
			for _, p := range n.ReservedPorts {
				if p.Value < 1 || p.Value > 65535 || statics[p.Value] {
					bad("group %q: static port %d out of range or twice", name, p.Value)
				}
				statics[p.Value] = true
			}
		}
		tasks := map[string]bool{}
		mains := 0 // tasks with no lifecycle: what the group is for
		for _, t := range g.Tasks {
			if tasks[t.Name] || t.Name == "" || strings.Contains(t.Name, "/") {
				bad("group %q: task name %q empty, with '/' or twice", name, t.Name)
			}
			tasks[t.Name] = true
			if l := t.Lifecycle; l != nil {
				if l.Hook != "prestart" && l.Hook != "poststart" && l.Hook != "poststop" {
					bad("task %q: lifecycle hook %q", t.Name, l.Hook)
				}
			} else {
				mains++
			}
			checkRestart(bad, "task "+strconv.Quote(t.Name), t.RestartPolicy)
			cmd, _ := t.Config["command"].(string)
			switch t.Driver {
			case "raw_exec":
				if !filepath.IsAbs(cmd) {
					bad("task %q: raw_exec needs an absolute command, got %q", t.Name, cmd)
				}
			case "docker":
				if img, _ := t.Config["image"].(string); img == "" {
					bad("task %q: docker needs an image", t.Name)
				}
			default:
				bad("task %q: driver %q", t.Name, t.Driver)
			}
			if t.KillTimeout != nil && *t.KillTimeout < 0 {
				bad("task %q: negative kill_timeout", t.Name)
			}
			for _, s := range t.Services {
				if !serviceName.MatchString(s.Name) {
					bad("service %q: not a valid Nomad service name", s.Name)
				}
				if s.PortLabel != "" && !labels[s.PortLabel] {
					bad("service %q: port %q is not in the group's network", s.Name, s.PortLabel)
				}
				for _, c := range s.Checks {
					if c.Interval <= 0 || c.Timeout <= 0 {
						bad("check %q: interval and timeout must be positive", c.Name)
					}
					if s.Provider == "nomad" && c.Type != "http" && c.Type != "tcp" {
						bad("check %q: provider nomad runs http and tcp checks, not %q", c.Name, c.Type)
					}
					if c.Type == "http" && !strings.HasPrefix(c.Path, "/") {
						bad("check %q: http path %q", c.Name, c.Path)
					}
					if c.PortLabel != "" && !labels[c.PortLabel] {
						bad("check %q: port %q is not in the group's network", c.Name, c.PortLabel)
					}
					if c.Type == "http" && s.PortLabel == "" && c.PortLabel == "" {
						bad("check %q: an http check needs a port", c.Name)
					}
				}
			}
		}
		if mains == 0 {
			bad("group %q: every task has a lifecycle hook; none is the main task", name)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "\n"))
	}
	return nil
}
