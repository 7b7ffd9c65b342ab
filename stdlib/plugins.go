package stdlib

import (
	"context"

	glua "github.com/yuin/gopher-lua"

	"github.com/pmdaemon/pmdaemon/host/api"
	"github.com/pmdaemon/pmdaemon/host/config"
)

// pluginsFuncs is the plugins module: plugins.add { name=, path=, config=, timeout= } registers
// a plugin before the script starts apps, so that a policy applies to them. A plugin already
// registered with the same binary and config is left alone; with --update one that differs is
// replaced. It returns { name=, kinds={...}, sha256=, existed=, updated=, differs= }.
func (h *Host) pluginsFuncs() map[string]glua.LGFunction {
	return map[string]glua.LGFunction{"add": h.pluginsAdd}
}

func (h *Host) pluginsAdd(L *glua.LState) int {
	const fn = "plugins.add"
	if L.GetTop() != 1 {
		raise(L, fn, "takes one table { name = ..., path = ..., config = {...} }, got %d arguments", L.GetTop())
	}
	if _, ok := L.Get(1).(*glua.LTable); !ok {
		raise(L, fn, "takes a table { name = ..., path = ..., config = {...} }, got %s", typeName(L.Get(1)))
	}
	v, err := ToGo(L.Get(1))
	if err != nil {
		raise(L, fn, "%v", err)
	}
	m, ok := v.(map[string]any)
	if !ok {
		raise(L, fn, "takes a table with keys name, path, config, timeout")
	}
	pd, err := config.PluginFromMap(m, Where(L)+": "+fn, h.Dir)
	if err != nil {
		raiseAt(L, err.Error())
	}
	timeout, err := api.ParsePluginTimeout(pd.Timeout)
	if err != nil {
		raiseAt(L, Where(L)+": "+fn+": "+err.Error())
	}
	req := api.PluginAddRequest{Name: pd.Name, Path: pd.Path, Config: pd.Config, Timeout: timeout, Update: h.Update}
	if h.DryRun {
		h.mu.Lock()
		h.actions = append(h.actions, "plugin add "+pd.Name+" "+pd.Path)
		h.mu.Unlock()
		t := L.NewTable()
		t.RawSetString("name", glua.LString(pd.Name))
		L.Push(t)
		return 1
	}
	if h.Client == nil {
		raise(L, fn, "no daemon connection")
	}
	var res *api.PluginEnsured
	err = h.change(func(ctx context.Context) error {
		var err error
		res, err = h.Client.EnsurePlugin(ctx, req)
		if err == nil {
			h.plugins = append(h.plugins, *res)
		}
		return err
	})
	if err != nil {
		raise(L, fn, "plugin %q: %s", pd.Name, daemonErr(err))
	}
	t := L.NewTable()
	t.RawSetString("name", glua.LString(res.Plugin.Name))
	t.RawSetString("sha256", glua.LString(res.Plugin.SHA256))
	kinds := L.NewTable()
	for _, k := range res.Plugin.Kinds {
		kinds.Append(glua.LString(k))
	}
	t.RawSetString("kinds", kinds)
	t.RawSetString("existed", glua.LBool(res.Existed))
	t.RawSetString("updated", glua.LBool(res.Updated))
	t.RawSetString("differs", glua.LBool(res.Differs))
	L.Push(t)
	return 1
}
