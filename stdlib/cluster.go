package stdlib

import (
	"context"
	"encoding/json"
	"sort"
	"strconv"
	"strings"

	glua "github.com/yuin/gopher-lua"

	"github.com/pmdaemon/pmdaemon/host/api"
	"github.com/pmdaemon/pmdaemon/host/config"
	"github.com/pmdaemon/pmdaemon/host/ports"
)

// clusterFuncs is the cluster module: the daemon's app operations.
func (h *Host) clusterFuncs() map[string]glua.LGFunction {
	return map[string]glua.LGFunction{
		"start":   h.clusterStart,
		"stop":    h.targetOp("stop"),
		"delete":  h.targetOp("delete"),
		"restart": h.targetOp("restart"),
		"reload":  h.targetOp("reload"),
		"list":    h.clusterList,
		"info":    h.clusterInfo,
	}
}

// startedTable is what cluster.start, restart and reload return.
func startedTable(L *glua.LState, s *api.Started) *glua.LTable {
	t := L.CreateTable(0, 6)
	t.RawSetString("name", glua.LString(s.Name))
	ids := L.CreateTable(len(s.IDs), 0)
	for _, id := range s.IDs {
		ids.Append(glua.LNumber(id))
	}
	t.RawSetString("ids", ids)
	ps := L.CreateTable(len(s.Ports), 0)
	for _, p := range s.Ports {
		ps.Append(glua.LNumber(p))
	}
	t.RawSetString("ports", ps)
	t.RawSetString("instances", glua.LNumber(s.Instances))
	if s.Existed {
		t.RawSetString("existed", glua.LTrue)
	}
	if s.Updated {
		t.RawSetString("updated", glua.LTrue)
	}
	return t
}

func (h *Host) clusterStart(L *glua.LState) int {
	const fn = "cluster.start"
	if L.GetTop() > 1 {
		raise(L, fn, "takes one table of app settings, got %d arguments (write cluster.start { ... })", L.GetTop())
	}
	m, err := AppMap(L.Get(1))
	if err != nil {
		raise(L, fn, "%v", err)
	}
	where := Where(L)
	app, err := config.AppFromMap(m, where+": "+fn, h.Dir)
	if err != nil {
		raiseAt(L, err.Error())
	}
	if err := h.ClaimName(app.Name, where); err != nil {
		raise(L, fn, "%v", err)
	}
	if h.Only != "" && app.Name != h.Only {
		t := startedTable(L, &api.Started{Name: app.Name, IDs: []int{}, Ports: []int{}, Instances: app.Instances})
		t.RawSetString("skipped", glua.LTrue)
		L.Push(t)
		return 1
	}
	if h.DryRun {
		h.mu.Lock()
		h.planned = append(h.planned, app)
		h.mu.Unlock()
		L.Push(startedTable(L, &api.Started{Name: app.Name, IDs: []int{}, Ports: fixedPorts(app.Port, app.Instances), Instances: app.Instances}))
		return 1
	}
	if h.Client == nil {
		raise(L, fn, "no daemon connection")
	}
	ifExists := "keep"
	if h.Update {
		ifExists = "update"
	}
	var st *api.Started
	err = h.change(func(ctx context.Context) error {
		var err error
		st, err = h.Client.Start(ctx, api.StartRequest{App: app, IfExists: ifExists})
		if err == nil {
			h.started = append(h.started, *st)
		}
		return err
	})
	if err != nil {
		raise(L, fn, "app %q: %s", app.Name, daemonErr(err))
	}
	L.Push(startedTable(L, st))
	return 1
}

// targetOp builds stop, delete, restart and reload: op(target [, {port=..., instances=...}]).
// stop and delete return nothing; restart and reload return the app's table, or for "all"
// an array of them.
func (h *Host) targetOp(verb string) glua.LGFunction {
	fn := "cluster." + verb
	withOpts := verb == "restart" || verb == "reload"
	return func(L *glua.LState) int {
		req := api.TargetRequest{Target: checkTarget(L, fn)}
		if withOpts {
			if opts := checkTable(L, fn, 2, "options", true); opts != nil {
				req.Port, req.Instances = checkOverrides(L, fn, opts)
			}
		} else if L.GetTop() > 1 {
			raise(L, fn, "takes one argument, an app name, an instance id or \"all\"")
		}
		if h.Only != "" && req.Target != h.Only {
			if !withOpts {
				return 0
			}
			t := startedTable(L, &api.Started{Name: req.Target, IDs: []int{}, Ports: []int{}, Instances: req.Instances})
			t.RawSetString("skipped", glua.LTrue)
			L.Push(t)
			return 1
		}
		if h.DryRun {
			line := verb + " " + req.Target
			if req.Port != "" {
				line += " --port " + req.Port
			}
			if req.Instances > 0 {
				line += " --instances " + strconv.Itoa(req.Instances)
			}
			h.mu.Lock()
			h.actions = append(h.actions, line)
			h.mu.Unlock()
			if !withOpts {
				return 0
			}
			L.Push(startedTable(L, &api.Started{Name: req.Target, IDs: []int{}, Ports: fixedPorts(req.Port, max(req.Instances, 1)), Instances: req.Instances}))
			return 1
		}
		if h.Client == nil {
			raise(L, fn, "no daemon connection")
		}
		var res *api.Result
		err := h.change(func(ctx context.Context) error {
			var err error
			switch verb {
			case "stop":
				res, err = h.Client.Stop(ctx, req)
			case "delete":
				res, err = h.Client.Delete(ctx, req)
			case "restart":
				res, err = h.Client.Restart(ctx, req)
			case "reload":
				res, err = h.Client.Reload(ctx, req)
			}
			return err
		})
		if err != nil {
			raise(L, fn, "%s", daemonErr(err))
		}
		if !withOpts {
			return 0
		}
		if req.Target != "all" && len(res.Apps) == 1 {
			L.Push(startedTable(L, &res.Apps[0]))
			return 1
		}
		arr := L.CreateTable(len(res.Apps), 0)
		for i := range res.Apps {
			arr.Append(startedTable(L, &res.Apps[i]))
		}
		L.Push(arr)
		return 1
	}
}

// checkTarget reads argument 1: an app name, an instance id (a number) or "all".
func checkTarget(L *glua.LState, fn string) string {
	switch v := L.Get(1).(type) {
	case glua.LString:
		if strings.TrimSpace(string(v)) == "" {
			raise(L, fn, "the app name is empty")
		}
		return string(v)
	case glua.LNumber:
		return strconv.Itoa(checkInt(L, fn, 1, "instance id"))
	default:
		raise(L, fn, "expected an app name, an instance id or \"all\", got %s", typeName(v))
	}
	return ""
}

// checkOverrides reads {port = SPEC, instances = N}.
func checkOverrides(L *glua.LState, fn string, opts *glua.LTable) (port string, instances int) {
	x, err := ToGo(opts)
	if err != nil {
		raise(L, fn, "options: %v", err)
	}
	m, ok := x.(map[string]any)
	if !ok {
		raise(L, fn, "options must be a table like { port = \"4000-4003\", instances = 4 }")
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := m[k]
		switch k {
		case "port":
			switch p := v.(type) {
			case string:
				port = p
			case float64:
				port = strconv.FormatFloat(p, 'f', -1, 64)
			default:
				raise(L, fn, "options.port must be a port spec string or a port number")
			}
			spec, err := ports.ParseSpec(port)
			if err != nil {
				raise(L, fn, "%v", err)
			}
			port = spec.String()
		case "instances":
			f, ok := v.(float64)
			if !ok || f != float64(int(f)) || f < 1 || f > config.MaxInstances {
				raise(L, fn, "options.instances must be a whole number from 1 to %d", config.MaxInstances)
			}
			instances = int(f)
		default:
			raise(L, fn, "unknown option %q (the options are port and instances)", k)
		}
	}
	return port, instances
}

func (h *Host) clusterList(L *glua.LState) int {
	const fn = "cluster.list"
	if h.Client == nil {
		L.Push(L.NewTable())
		return 1
	}
	rows, err := h.Client.List(h.Ctx)
	if err != nil {
		raise(L, fn, "%s", daemonErr(err))
	}
	if rows == nil {
		rows = []api.Instance{}
	}
	pushJSON(L, fn, rows)
	return 1
}

// clusterInfo returns what `info --json` shows, or nil and a message when there is no such
// app.
func (h *Host) clusterInfo(L *glua.LState) int {
	const fn = "cluster.info"
	target := checkTarget(L, fn)
	if h.Client == nil {
		L.Push(glua.LNil)
		L.Push(glua.LString("no daemon connection (dry run)"))
		return 2
	}
	info, err := h.Client.Info(h.Ctx, target)
	if api.IsNotFound(err) {
		L.Push(glua.LNil)
		L.Push(glua.LString(err.Error()))
		return 2
	}
	if err != nil {
		raise(L, fn, "%s", daemonErr(err))
	}
	pushJSON(L, fn, info)
	return 1
}

// pushJSON pushes v as its JSON form decoded into Lua, so scripts see the keys of `--json`.
func pushJSON(L *glua.LState, fn string, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		raise(L, fn, "%v", err)
	}
	var x any
	if err := json.Unmarshal(b, &x); err != nil {
		raise(L, fn, "%v", err)
	}
	c := &toLua{L: L, limit: daemonEntries}
	lv, err := c.value(x, 0)
	if err != nil {
		raise(L, fn, "%v", err)
	}
	L.Push(lv)
}

// daemonEntries bounds what the daemon's answers may hold (list with many instances).
const daemonEntries = 1 << 20
