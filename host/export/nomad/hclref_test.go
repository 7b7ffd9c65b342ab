package nomad

import (
	"bytes"
	"fmt"
	"reflect"
	"sort"
	"time"

	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/hashicorp/hcl/v2/hclwrite"
	"github.com/hashicorp/nomad/api"
	"github.com/zclconf/go-cty/cty"
)

// referenceHCL writes job with hclwrite, walking the nomad/api types by their `hcl` tags (the
// names Nomad's jobspec parser reads): the writer the export used before it had its own types.
// HCL must write the same bytes for the job its JSON decodes to. A field set in the job that
// has no HCL form is an error.
func referenceHCL(job *api.Job) ([]byte, error) {
	f := hclwrite.NewEmptyFile()
	blk := f.Body().AppendNewBlock("job", []string{*job.ID})
	if err := writeStruct(blk.Body(), reflect.ValueOf(job).Elem(), "job"); err != nil {
		return nil, err
	}
	return hclwrite.Format(f.Bytes()), nil
}

// writeStruct writes v's set fields into body. where names the block for errors.
func writeStruct(body *hclwrite.Body, v reflect.Value, where string) error {
	t := v.Type()
	for i := range t.NumField() {
		f, fv := t.Field(i), v.Field(i)
		tag, ok := tagOf(f)
		if !ok {
			if !fv.IsZero() {
				return fmt.Errorf("nomad HCL: %s.%s is set but has no HCL form", where, f.Name)
			}
			continue
		}
		if tag.kind == "label" || fv.IsZero() {
			continue
		}
		if where == "job" && (tag.name == "id" || tag.name == "name") {
			continue // the job block's label says both
		}
		if t == reflect.TypeFor[api.NetworkResource]() && tag.name == "reserved_ports" {
			// A static port is written as Nomad's jobspec says it: port "LABEL" { static = N }.
			tag.name = "port"
		}
		if tag.kind == "attr" {
			if err := writeAttr(body, tag.name, fv, where); err != nil {
				return err
			}
			continue
		}
		if err := writeBlocks(body, tag.name, fv, where+"."+tag.name); err != nil {
			return err
		}
	}
	return nil
}

// writeBlocks writes a block field: a struct (pointer), a list of them, or a map that Nomad
// writes as a block of attributes (env, meta, config).
func writeBlocks(body *hclwrite.Body, name string, fv reflect.Value, where string) error {
	switch fv.Kind() {
	case reflect.Pointer:
		return writeBlock(body, name, fv.Elem(), where)
	case reflect.Struct:
		return writeBlock(body, name, fv, where)
	case reflect.Slice:
		for i := range fv.Len() {
			e := fv.Index(i)
			if e.Kind() == reflect.Pointer {
				e = e.Elem()
			}
			if err := writeBlock(body, name, e, fmt.Sprintf("%s[%d]", where, i)); err != nil {
				return err
			}
		}
		return nil
	case reflect.Map:
		if len(body.Attributes())+len(body.Blocks()) > 0 {
			body.AppendNewline()
		}
		blk := body.AppendNewBlock(name, nil)
		keys := fv.MapKeys()
		sort.Slice(keys, func(i, j int) bool { return keys[i].String() < keys[j].String() })
		for _, k := range keys {
			if !hclsyntax.ValidIdentifier(k.String()) {
				return fmt.Errorf("%s: %q cannot be written as an HCL attribute name; use --format json", where, k.String())
			}
			if err := writeAttr(blk.Body(), k.String(), fv.MapIndex(k), where); err != nil {
				return err
			}
		}
		return nil
	}
	return fmt.Errorf("nomad HCL: %s is a %s, which has no block form here", where, fv.Type())
}

func writeBlock(body *hclwrite.Body, name string, v reflect.Value, where string) error {
	var labels []string
	t := v.Type()
	for i := range t.NumField() {
		if tag, ok := tagOf(t.Field(i)); ok && tag.kind == "label" {
			l := v.Field(i)
			if l.Kind() == reflect.Pointer {
				l = l.Elem()
			}
			labels = append(labels, l.String())
		}
	}
	if len(body.Attributes())+len(body.Blocks()) > 0 {
		body.AppendNewline() // a blank line before each block but a body's first
	}
	blk := body.AppendNewBlock(name, labels)
	return writeStruct(blk.Body(), v, where)
}

func writeAttr(body *hclwrite.Body, name string, fv reflect.Value, where string) error {
	val, err := ctyOf(fv)
	if err != nil {
		return fmt.Errorf("nomad HCL: %s.%s: %w", where, name, err)
	}
	body.SetAttributeRaw(name, liveRefs(hclwrite.TokensForValue(val)))
	return nil
}

// ctyOf converts the Go values the job uses into HCL values; a duration is written as Nomad
// reads it, a string like "5s".
func ctyOf(v reflect.Value) (cty.Value, error) {
	for v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface {
		v = v.Elem()
	}
	if v.Type() == reflect.TypeFor[time.Duration]() {
		return cty.StringVal(time.Duration(v.Int()).String()), nil
	}
	switch v.Kind() {
	case reflect.String:
		return cty.StringVal(v.String()), nil
	case reflect.Bool:
		return cty.BoolVal(v.Bool()), nil
	case reflect.Int, reflect.Int64, reflect.Int32:
		return cty.NumberIntVal(v.Int()), nil
	case reflect.Uint64, reflect.Uint32:
		return cty.NumberUIntVal(v.Uint()), nil
	case reflect.Slice:
		vals := make([]cty.Value, v.Len())
		for i := range v.Len() {
			e, err := ctyOf(v.Index(i))
			if err != nil {
				return cty.NilVal, err
			}
			vals[i] = e
		}
		if len(vals) == 0 {
			return cty.EmptyTupleVal, nil
		}
		return cty.TupleVal(vals), nil
	}
	return cty.NilVal, fmt.Errorf("a %s has no HCL form here", v.Type())
}

// liveRefs undoes hclwrite's escaping of "${" for the references HCL writes live
// (runtimeRefs); every other "${" stays escaped.
func liveRefs(toks hclwrite.Tokens) hclwrite.Tokens {
	for _, t := range toks {
		if t.Type == hclsyntax.TokenQuotedLit {
			for _, ref := range runtimeRefs {
				t.Bytes = bytes.ReplaceAll(t.Bytes, []byte("$"+ref), []byte(ref))
			}
		}
	}
	return toks
}
