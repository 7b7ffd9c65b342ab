package stdlib

import (
	"fmt"
	"strconv"

	glua "github.com/yuin/gopher-lua"

	"github.com/pmdaemon/pmdaemon/host/ports"
)

// portsFuncs is the ports module: spec builders and daemon queries.
//
//	ports.range(a, b)  -> "a-b"       instance i gets a+i
//	ports.auto(a, b)   -> "auto:a-b"  the first free ports of a..b
//	ports.single(p)    -> "p"         one port, one instance
//	ports.spec(s)      -> s checked and normalised (a string or a number)
//	ports.is_free(p)   -> free, reason
//	ports.assigned()   -> { [port] = "app", ... }
func (h *Host) portsFuncs() map[string]glua.LGFunction {
	return map[string]glua.LGFunction{
		"range": func(L *glua.LState) int {
			a := checkInt(L, "ports.range", 1, "start port")
			b := checkInt(L, "ports.range", 2, "end port")
			return pushSpec(L, "ports.range", fmt.Sprintf("%d-%d", a, b))
		},
		"auto": func(L *glua.LState) int {
			a := checkInt(L, "ports.auto", 1, "start port")
			b := checkInt(L, "ports.auto", 2, "end port")
			return pushSpec(L, "ports.auto", fmt.Sprintf("auto:%d-%d", a, b))
		},
		"single": func(L *glua.LState) int {
			p := checkInt(L, "ports.single", 1, "port")
			return pushSpec(L, "ports.single", strconv.Itoa(p))
		},
		"spec": func(L *glua.LState) int {
			switch v := L.Get(1).(type) {
			case glua.LString:
				return pushSpec(L, "ports.spec", string(v))
			case glua.LNumber:
				p := checkInt(L, "ports.spec", 1, "spec")
				return pushSpec(L, "ports.spec", strconv.Itoa(p))
			default:
				raise(L, "ports.spec", "spec must be a string like \"3000-3003\" or a port number, got %s", typeName(v))
			}
			return 0
		},
		"is_free": func(L *glua.LState) int {
			p := checkPort(L, "ports.is_free", 1, "port")
			if h.Client == nil {
				// A dry run without a daemon: only the OS can be asked.
				if err := (ports.OSProber{}).Probe(p); err != nil {
					L.Push(glua.LFalse)
					L.Push(glua.LString(err.Error()))
					return 2
				}
				L.Push(glua.LTrue)
				return 1
			}
			free, err := h.Client.PortFree(h.Ctx, p)
			if err != nil {
				raise(L, "ports.is_free", "%s", daemonErr(err))
			}
			L.Push(glua.LBool(free.Free))
			if free.Free {
				return 1
			}
			L.Push(glua.LString(free.Reason))
			return 2
		},
		"assigned": func(L *glua.LState) int {
			if h.Client == nil {
				L.Push(L.NewTable())
				return 1
			}
			m, err := h.Client.PortsAssigned(h.Ctx)
			if err != nil {
				raise(L, "ports.assigned", "%s", daemonErr(err))
			}
			if m == nil {
				m = map[int]string{}
			}
			push(L, "ports.assigned", m)
			return 1
		},
	}
}

// pushSpec validates a spec with the daemon's parser and pushes its normal form.
func pushSpec(L *glua.LState, fn, s string) int {
	spec, err := ports.ParseSpec(s)
	if err != nil {
		raise(L, fn, "%v", err)
	}
	L.Push(glua.LString(spec.String()))
	return 1
}

// fixedPorts lists the ports a spec gives n instances without asking anyone: those of a
// range or a single port; none for auto.
func fixedPorts(spec string, n int) []int {
	out := []int{}
	if spec == "" {
		return out
	}
	s, err := ports.ParseSpec(spec)
	if err != nil || s.Kind == ports.Auto {
		return out
	}
	for i := 0; i < n && s.Start+i <= s.End; i++ {
		out = append(out, s.Start+i)
	}
	return out
}
