package stdlib

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"

	glua "github.com/yuin/gopher-lua"
)

// Limits of one conversion between Lua and Go values. They keep a runaway script (a table that
// grows in a loop, a table that contains itself) from turning into a huge or endless Go value.
const (
	// MaxEntries bounds the number of values (table entries, counted through every level) in
	// one conversion.
	MaxEntries = 10000
	// MaxDepth bounds the nesting of tables in one conversion.
	MaxDepth = 32
)

// ToGo converts a Lua value to the Go values an ecosystem object is made of: a table with keys
// 1..n becomes []any, any other table map[string]any (an empty table is an empty map), numbers
// float64, strings and booleans themselves, nil nil. Functions, userdata, coroutines, tables
// that mix array items and named keys, NaN and infinities are errors; the error names the
// place in the value (`env.PORT`, `args[2]`).
func ToGo(v glua.LValue) (any, error) {
	c := &toGo{seen: map[*glua.LTable]bool{}}
	return c.value(v, "", 0)
}

type toGo struct {
	entries int
	seen    map[*glua.LTable]bool
}

// pathErr is a conversion error at a place inside the value.
type pathErr struct {
	path, msg string
}

func (e *pathErr) Error() string {
	if e.path == "" {
		return e.msg
	}
	return e.path + ": " + e.msg
}

func (c *toGo) value(v glua.LValue, path string, depth int) (any, error) {
	switch x := v.(type) {
	case *glua.LNilType:
		return nil, nil
	case glua.LBool:
		return bool(x), nil
	case glua.LString:
		return string(x), nil
	case glua.LNumber:
		f := float64(x)
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, &pathErr{path, fmt.Sprintf("%v is not a usable number", f)}
		}
		return f, nil
	case *glua.LTable:
		return c.table(x, path, depth)
	}
	return nil, &pathErr{path, fmt.Sprintf("a %s cannot be used as a value (use strings, numbers, booleans and tables)", v.Type())}
}

func (c *toGo) table(t *glua.LTable, path string, depth int) (any, error) {
	if c.seen[t] {
		return nil, &pathErr{path, "the table contains itself"}
	}
	if depth >= MaxDepth {
		return nil, &pathErr{path, fmt.Sprintf("tables are nested more than %d levels deep", MaxDepth)}
	}
	c.seen[t] = true
	defer delete(c.seen, t)

	type entry struct {
		k glua.LValue
		v glua.LValue
	}
	var items []entry
	strKeys, intKeys := 0, 0
	for k, v := t.Next(glua.LNil); k != glua.LNil; k, v = t.Next(k) {
		c.entries++
		if c.entries > MaxEntries {
			return nil, &pathErr{path, fmt.Sprintf("the value has more than %d entries, the limit for one table conversion", MaxEntries)}
		}
		switch kk := k.(type) {
		case glua.LString:
			strKeys++
		case glua.LNumber:
			if f := float64(kk); f != math.Trunc(f) || f < 1 {
				return nil, &pathErr{path, fmt.Sprintf("key %v is not allowed: use string keys, or an array with keys 1..n", k)}
			}
			intKeys++
		default:
			return nil, &pathErr{path, fmt.Sprintf("a %s key is not allowed: use string keys, or an array with keys 1..n", k.Type())}
		}
		items = append(items, entry{k, v})
	}
	if strKeys > 0 && intKeys > 0 {
		return nil, &pathErr{path, "the table mixes array items and named keys; use one or the other"}
	}
	if intKeys > 0 {
		arr := make([]any, intKeys)
		for _, e := range items {
			i := int(float64(e.k.(glua.LNumber)))
			if i > intKeys {
				return nil, &pathErr{path, fmt.Sprintf("the array has a hole: key %d but only %d items (arrays need keys 1..n)", i, intKeys)}
			}
			sub := path + "[" + strconv.Itoa(i) + "]"
			x, err := c.value(e.v, sub, depth+1)
			if err != nil {
				return nil, err
			}
			arr[i-1] = x
		}
		return arr, nil
	}
	m := make(map[string]any, len(items))
	for _, e := range items {
		k := string(e.k.(glua.LString))
		sub := k
		if path != "" {
			sub = path + "." + k
		}
		x, err := c.value(e.v, sub, depth+1)
		if err != nil {
			return nil, err
		}
		m[k] = x
	}
	return m, nil
}

// AppMap converts the table of one app (cluster.start's argument, an element of a returned
// apps list) to the map config.AppFromMap takes. An empty args table is an empty list.
func AppMap(v glua.LValue) (map[string]any, error) {
	t, ok := v.(*glua.LTable)
	if !ok {
		return nil, fmt.Errorf("expected a table of app settings like { name = \"web\", script = \"node server.js\" }, got %s", typeName(v))
	}
	x, err := ToGo(t)
	if err != nil {
		return nil, err
	}
	m, ok := x.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("expected a table of named app settings like { name = \"web\", script = \"node server.js\" }, got an array")
	}
	if a, ok := m["args"].(map[string]any); ok && len(a) == 0 {
		m["args"] = []any{}
	}
	return m, nil
}

// ToLua converts a Go value (as decoded from JSON: map[string]any, []any, float64, string,
// bool, nil; also int, int64, []int, []string, map[string]string and map[int]string) to a Lua
// value. It fails past MaxEntries values or MaxDepth levels.
func ToLua(L *glua.LState, v any) (glua.LValue, error) {
	c := &toLua{L: L, limit: MaxEntries}
	return c.value(v, 0)
}

type toLua struct {
	L       *glua.LState
	limit   int
	entries int
}

func (c *toLua) count(n int) error {
	c.entries += n
	if c.entries > c.limit {
		return fmt.Errorf("the value has more than %d entries, the limit for one conversion", c.limit)
	}
	return nil
}

func (c *toLua) value(v any, depth int) (glua.LValue, error) {
	if depth > MaxDepth {
		return nil, fmt.Errorf("the value is nested more than %d levels deep", MaxDepth)
	}
	switch x := v.(type) {
	case nil:
		return glua.LNil, nil
	case bool:
		return glua.LBool(x), nil
	case string:
		return glua.LString(x), nil
	case float64:
		return glua.LNumber(x), nil
	case int:
		return glua.LNumber(x), nil
	case int64:
		return glua.LNumber(x), nil
	case []int:
		if err := c.count(len(x)); err != nil {
			return nil, err
		}
		t := c.L.CreateTable(len(x), 0)
		for _, n := range x {
			t.Append(glua.LNumber(n))
		}
		return t, nil
	case []string:
		if err := c.count(len(x)); err != nil {
			return nil, err
		}
		t := c.L.CreateTable(len(x), 0)
		for _, s := range x {
			t.Append(glua.LString(s))
		}
		return t, nil
	case map[string]string:
		if err := c.count(len(x)); err != nil {
			return nil, err
		}
		t := c.L.CreateTable(0, len(x))
		for k, s := range x {
			t.RawSetString(k, glua.LString(s))
		}
		return t, nil
	case map[int]string:
		if err := c.count(len(x)); err != nil {
			return nil, err
		}
		t := c.L.CreateTable(0, len(x))
		for k, s := range x {
			t.RawSetInt(k, glua.LString(s))
		}
		return t, nil
	case []any:
		if err := c.count(len(x)); err != nil {
			return nil, err
		}
		t := c.L.CreateTable(len(x), 0)
		for i, e := range x {
			lv, err := c.value(e, depth+1)
			if err != nil {
				return nil, err
			}
			t.RawSetInt(i+1, lv)
		}
		return t, nil
	case map[string]any:
		if err := c.count(len(x)); err != nil {
			return nil, err
		}
		t := c.L.CreateTable(0, len(x))
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			lv, err := c.value(x[k], depth+1)
			if err != nil {
				return nil, err
			}
			t.RawSetString(k, lv)
		}
		return t, nil
	}
	return nil, fmt.Errorf("cannot convert a Go %T to Lua", v)
}

// typeName names a Lua value's type for argument errors ("a string", "nil").
func typeName(v glua.LValue) string {
	switch v.Type() {
	case glua.LTNil:
		return "nil"
	case glua.LTTable:
		return "a table"
	case glua.LTFunction:
		return "a function"
	case glua.LTUserData:
		return "a userdata"
	case glua.LTThread:
		return "a coroutine"
	case glua.LTChannel:
		return "a channel"
	}
	t := v.Type().String()
	if strings.IndexByte("aeiou", t[0]) >= 0 {
		return "an " + t
	}
	return "a " + t
}
