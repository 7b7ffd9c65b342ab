package lua

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"unicode/utf8"

	glua "github.com/yuin/gopher-lua"
	"github.com/yuin/gopher-lua/parse"

	"github.com/pmdaemon/pmdaemon/stdlib"
)

// newState builds the sandbox: base (without dofile, loadfile, module), table, string (with a
// bounded rep), math, a safe os (getenv, time, clock, date), a require limited to the
// script's directory, and the stdlib modules. Functions a script might look for but may not
// use (os.execute, io.*, dofile, ...) are replaced by ones that raise a clear error.
func newState(ctx context.Context, host *stdlib.Host, dir string) *glua.LState {
	L := glua.NewState(glua.Options{
		SkipOpenLibs:    true,
		CallStackSize:   CallStackSize,
		RegistrySize:    1024 * 4,
		RegistryMaxSize: RegistryMaxSize,
		// gopher-lua copies the whole stack at each growth step: grow in big steps so that
		// reaching the maximum is quick.
		RegistryGrowStep: 4096,
	})
	for _, lib := range []struct {
		name string
		open glua.LGFunction
	}{
		{glua.BaseLibName, glua.OpenBase},
		{glua.TabLibName, glua.OpenTable},
		{glua.StringLibName, glua.OpenString},
		{glua.MathLibName, glua.OpenMath},
		{glua.OsLibName, glua.OpenOs},
	} {
		L.Push(L.NewFunction(lib.open))
		L.Push(glua.LString(lib.name))
		L.Call(1, 0)
	}
	loaded := L.FindTable(L.Get(glua.RegistryIndex).(*glua.LTable), "_LOADED", 8).(*glua.LTable)

	forbid := func(name, why string) *glua.LFunction {
		return L.NewFunction(func(L *glua.LState) int {
			L.RaiseError("%s is not available in ecosystem scripts (sandbox): %s", name, why)
			return 0
		})
	}
	// base
	for _, name := range []string{"module", "_printregs", "require"} {
		L.SetGlobal(name, glua.LNil)
	}
	L.SetGlobal("dofile", forbid("dofile", "use require(\"name\") to load a module beside the script"))
	L.SetGlobal("loadfile", forbid("loadfile", "use require(\"name\") to load a module beside the script"))
	L.SetGlobal("print", L.NewFunction(func(L *glua.LState) int {
		n := L.GetTop()
		parts := make([]string, n)
		for i := 1; i <= n; i++ {
			parts[i-1] = L.ToStringMeta(L.Get(i)).String()
		}
		host.Print(strings.Join(parts, "\t"))
		return 0
	}))

	// string.rep builds one string in one Go call: bound it.
	strlib := L.GetGlobal("string").(*glua.LTable)
	rep := strlib.RawGetString("rep").(*glua.LFunction)
	strlib.RawSetString("rep", L.NewFunction(func(L *glua.LState) int {
		s := L.CheckString(1)
		n := L.CheckInt(2)
		if n > 0 && int64(len(s))*int64(n) > MaxStringSize {
			L.RaiseError("string.rep: the result would be larger than %d MB", MaxStringSize>>20)
		}
		L.Push(rep)
		L.Push(glua.LString(s))
		L.Push(glua.LNumber(n))
		L.Call(2, 1)
		return 1
	}))

	// os: a safe subset.
	full := L.GetGlobal("os").(*glua.LTable)
	safe := L.CreateTable(0, 12)
	for _, name := range []string{"getenv", "time", "clock", "date"} {
		safe.RawSetString(name, full.RawGetString(name))
	}
	for _, name := range []string{"execute", "exit", "remove", "rename", "tmpname", "setenv", "setlocale"} {
		safe.RawSetString(name, forbid("os."+name, "scripts cannot run programs, change files or the process"))
	}
	L.SetGlobal("os", safe)
	loaded.RawSetString("os", safe)

	// io: every field raises.
	io := L.NewTable()
	mt := L.NewTable()
	mt.RawSetString("__index", L.NewFunction(func(L *glua.LState) int {
		L.RaiseError("io.%s is not available in ecosystem scripts (sandbox): scripts cannot read or write files", L.ToStringMeta(L.Get(2)).String())
		return 0
	}))
	L.SetMetatable(io, mt)
	L.SetGlobal("io", io)

	// package and require.
	pkg := L.CreateTable(0, 4)
	pkg.RawSetString("loaded", loaded)
	pkg.RawSetString("path", glua.LString(filepath.Join(dir, "?.lua")))
	pkg.RawSetString("loadlib", forbid("package.loadlib", "native modules cannot be loaded"))
	L.SetGlobal("package", pkg)
	loaded.RawSetString("package", pkg)
	L.SetGlobal("require", L.NewFunction((&requirer{dir: dir, loaded: loaded}).require))

	// pcall without a message handler has gopher-lua build a traceback, which after a long
	// run of tail calls is huge and slow; give every protected call a plain handler.
	handler := passError(L)
	L.SetGlobal("pcall", L.NewFunction(func(L *glua.LState) int {
		if L.GetTop() == 0 {
			L.ArgError(1, "value expected")
		}
		if err := L.PCall(L.GetTop()-1, glua.MultRet, handler); err != nil {
			L.Push(glua.LFalse)
			L.Push(errObject(err))
			return 2
		}
		L.Insert(glua.LTrue, 1)
		return L.GetTop()
	}))

	stdlib.Open(L, host)
	L.SetContext(ctx)
	return L
}

// passError is a message handler that returns the error as it is. With a handler, PCall
// skips building a traceback.
func passError(L *glua.LState) *glua.LFunction {
	return L.NewFunction(func(L *glua.LState) int {
		L.Push(L.Get(1))
		return 1
	})
}

// errObject is the Lua value an error carries.
func errObject(err error) glua.LValue {
	var ae *glua.ApiError
	if errors.As(err, &ae) {
		return ae.Object
	}
	return glua.LString(err.Error())
}

// readSource reads a script or module: bounded, UTF-8, without a BOM, with a first line
// starting with # (a shebang) turned into a comment.
func readSource(path, name string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read %s: %w", name, err)
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.IsDir() {
		return nil, fmt.Errorf("cannot read %s: it is a directory", name)
	}
	src, err := io.ReadAll(io.LimitReader(f, MaxScriptSize+1))
	if err != nil {
		return nil, fmt.Errorf("cannot read %s: %w", name, err)
	}
	if len(src) > MaxScriptSize {
		return nil, fmt.Errorf("%s is larger than %d MB, the limit for a Lua script", name, MaxScriptSize>>20)
	}
	return src, nil
}

// compile checks the text and compiles it into a function; errors are `name:line: message`.
func compile(L *glua.LState, src []byte, name string) (*glua.LFunction, error) {
	src = bytes.TrimPrefix(src, []byte("\xef\xbb\xbf"))
	if !utf8.Valid(src) {
		off := invalidUTF8(src)
		line := 1 + bytes.Count(src[:off], []byte{'\n'})
		col := off - bytes.LastIndexByte(src[:off], '\n')
		return nil, fmt.Errorf("%s:%d: the file is not valid UTF-8 (byte 0x%02x at column %d); save it as UTF-8", name, line, src[off], col)
	}
	if bytes.HasPrefix(src, []byte("#")) {
		src = append([]byte("--"), src[1:]...)
	}
	if err := checkNesting(src, name); err != nil {
		return nil, err
	}
	chunk, err := parse.Parse(bytes.NewReader(src), name)
	if err != nil {
		var pe *parse.Error
		if errors.As(err, &pe) {
			line := pe.Pos.Line
			where := ""
			if line == parse.EOF || line <= 0 {
				line = 1 + bytes.Count(src, []byte{'\n'})
				where = " at the end of the file"
			} else if pe.Token != "" {
				where = fmt.Sprintf(" near '%s'", pe.Token)
			}
			return nil, fmt.Errorf("%s:%d: %s%s", name, line, strings.TrimSpace(pe.Message), where)
		}
		return nil, fmt.Errorf("%s: %s", name, strings.TrimSpace(err.Error()))
	}
	if chunk == nil && len(bytes.TrimSpace(src)) > 0 {
		return nil, fmt.Errorf("%s: the file could not be parsed", name)
	}
	proto, err := glua.Compile(chunk, name)
	if err != nil {
		var ce *glua.CompileError
		if errors.As(err, &ce) {
			return nil, fmt.Errorf("%s:%d: %s", name, ce.Line, ce.Message)
		}
		return nil, fmt.Errorf("%s: %v", name, err)
	}
	return L.NewFunctionFromProto(proto), nil
}

func invalidUTF8(b []byte) int {
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size <= 1 {
			return i
		}
		i += size
	}
	return len(b)
}

// maxNesting bounds bracket nesting, so that the parser and compiler (which recurse) never
// exhaust the Go stack on hostile input.
const maxNesting = 200

// checkNesting is a rough lexical pass: it counts ( [ { outside strings and comments.
func checkNesting(src []byte, name string) error {
	depth, line := 0, 1
	for i := 0; i < len(src); i++ {
		switch c := src[i]; c {
		case '\n':
			line++
		case '"', '\'':
			for i++; i < len(src) && src[i] != c && src[i] != '\n'; i++ {
				if src[i] == '\\' {
					i++
				}
			}
		case '-':
			if i+1 < len(src) && src[i+1] == '-' {
				i += 2
				if lvl, ok := longBracket(src, i); ok {
					i = skipLong(src, i, lvl, &line)
					continue
				}
				for i < len(src) && src[i] != '\n' {
					i++
				}
				i-- // let the loop see the newline
			}
		case '[':
			if lvl, ok := longBracket(src, i); ok {
				i = skipLong(src, i, lvl, &line)
				continue
			}
			depth++
		case '(', '{':
			depth++
		case ')', ']', '}':
			depth--
		}
		if depth > maxNesting {
			return fmt.Errorf("%s:%d: brackets are nested more than %d levels deep", name, line, maxNesting)
		}
	}
	return nil
}

// longBracket reports whether a long bracket [==[ opens at i, and its level.
func longBracket(src []byte, i int) (int, bool) {
	if i >= len(src) || src[i] != '[' {
		return 0, false
	}
	j := i + 1
	for j < len(src) && src[j] == '=' {
		j++
	}
	if j < len(src) && src[j] == '[' {
		return j - i - 1, true
	}
	return 0, false
}

// skipLong returns the index of the last byte of the long bracket that opens at i.
func skipLong(src []byte, i, lvl int, line *int) int {
	closing := "]" + strings.Repeat("=", lvl) + "]"
	start := i + lvl + 2
	end := bytes.Index(src[start:], []byte(closing))
	if end < 0 {
		*line += bytes.Count(src[start:], []byte{'\n'})
		return len(src)
	}
	*line += bytes.Count(src[start:start+end], []byte{'\n'})
	return start + end + len(closing) - 1
}

// requirer is the sandbox's require: modules are .lua files in the script's directory or
// below it, named with dots or slashes (require("lib.util") loads lib/util.lua).
type requirer struct {
	dir    string
	loaded *glua.LTable
}

// loading marks a module whose chunk is running, to catch require loops.
var loading = glua.LString("\x00loading")

func (r *requirer) require(L *glua.LState) int {
	v := L.Get(1)
	s, ok := v.(glua.LString)
	if !ok {
		L.RaiseError("require: the module name must be a string, got %s", v.Type())
	}
	name := string(s)
	if got := r.loaded.RawGetString(name); got != glua.LNil {
		if got == loading {
			L.RaiseError("require: module %q requires itself (a require loop)", name)
		}
		L.Push(got)
		return 1
	}
	rel, err := modulePath(name)
	if err != nil {
		L.RaiseError("require: %v", err)
	}
	if got := r.loaded.RawGetString(rel); got != glua.LNil && got != loading {
		// The same file under another name (lib.util, lib/util, lib/util.lua).
		r.loaded.RawSetString(name, got)
		L.Push(got)
		return 1
	}
	full := filepath.Join(r.dir, rel)
	if err := r.inside(full); err != nil {
		L.RaiseError("require: module %q: %v", name, err)
	}
	src, err := readSource(full, rel)
	if errors.Is(err, os.ErrNotExist) {
		L.RaiseError("require: module %q not found: no file %s in %s", name, rel, r.dir)
	}
	if err != nil {
		L.RaiseError("require: %v", err)
	}
	fn, err := compile(L, src, rel)
	if err != nil {
		L.Error(glua.LString(err.Error()), 0)
	}
	r.loaded.RawSetString(name, loading)
	L.Push(fn)
	L.Push(glua.LString(name))
	if err := L.PCall(1, 1, passError(L)); err != nil {
		r.loaded.RawSetString(name, glua.LNil)
		L.Error(errObject(err), 0)
	}
	ret := L.Get(-1)
	if ret == glua.LNil {
		ret = glua.LTrue
	}
	r.loaded.RawSetString(name, ret)
	r.loaded.RawSetString(rel, ret)
	L.Push(ret)
	return 1
}

// modulePath maps a module name to a relative file path, refusing anything that could leave
// the script's directory.
func modulePath(name string) (string, error) {
	switch {
	case name == "":
		return "", errors.New("the module name is empty")
	case strings.HasPrefix(name, "/") || filepath.IsAbs(name):
		return "", fmt.Errorf("module %q is an absolute path; modules are loaded only from the script's directory", name)
	case strings.Contains(name, ".."):
		return "", fmt.Errorf("module %q is outside the script's directory (\"..\" is not allowed)", name)
	case strings.ContainsAny(name, "\\\x00~"):
		return "", fmt.Errorf("module %q is not a valid module name", name)
	}
	base := strings.TrimSuffix(name, ".lua")
	base = strings.ReplaceAll(base, ".", "/")
	for _, part := range strings.Split(base, "/") {
		if part == "" {
			return "", fmt.Errorf("module %q is not a valid module name", name)
		}
		for _, c := range part {
			if !(c == '_' || c == '-' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
				return "", fmt.Errorf("module %q is not a valid module name (use letters, digits, _ and -, with . or / between directories)", name)
			}
		}
	}
	return base + ".lua", nil
}

// inside checks that the file, symlinks resolved, is still in the script's directory.
func (r *requirer) inside(full string) error {
	real, err := filepath.EvalSymlinks(full)
	if err != nil {
		return nil // a missing file is reported by the read
	}
	dir, err := filepath.EvalSymlinks(r.dir)
	if err != nil {
		return err
	}
	rel, err := filepath.Rel(dir, real)
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return errors.New("the file is a link to outside the script's directory")
	}
	return nil
}
