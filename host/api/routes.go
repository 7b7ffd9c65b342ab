package api

// Route is one endpoint of the API. The daemon registers its handlers by these values and the
// client builds its requests from them, so the two cannot drift apart: a path changed here
// changes on both sides, and a route without a handler fails the daemon's tests.
type Route struct {
	Method string
	Path   string
}

// Pattern is the route as a net/http ServeMux pattern ("GET /v1/ping").
func (r Route) Pattern() string { return r.Method + " " + r.Path }

func (r Route) String() string { return r.Pattern() }

var (
	RoutePing      = Route{"GET", "/v1/ping"}
	RouteList      = Route{"GET", "/v1/list"}
	RouteInfo      = Route{"GET", "/v1/info"} // ?target=
	RouteStart     = Route{"POST", "/v1/start"}
	RouteStartMany = Route{"POST", "/v1/start-many"}
	RouteStop      = Route{"POST", "/v1/stop"}
	RouteRestart   = Route{"POST", "/v1/restart"}
	RouteReload    = Route{"POST", "/v1/reload"}
	RouteDelete    = Route{"POST", "/v1/delete"}
	RouteSave      = Route{"POST", "/v1/save"}
	RouteResurrect = Route{"POST", "/v1/resurrect"}
	RouteKill      = Route{"POST", "/v1/kill"}
	// RouteUpdate hands the running apps over to the next daemon: see UpdateResult.
	RouteUpdate       = Route{"POST", "/v1/update"}
	RoutePorts        = Route{"GET", "/v1/ports"}
	RoutePortFree     = Route{"GET", "/v1/ports/free"} // ?port=
	RoutePlugins      = Route{"GET", "/v1/plugins"}
	RoutePluginAdd    = Route{"POST", "/v1/plugins/add"}
	RoutePluginEnsure = Route{"POST", "/v1/plugins/ensure"}
	RoutePluginTrust  = Route{"POST", "/v1/plugins/trust"}
	RoutePluginRemove = Route{"POST", "/v1/plugins/remove"}
	// The commands PM2 users reach for (docs/migrating-from-pm2.md).
	RouteEnv    = Route{"GET", "/v1/env"} // ?id=
	RouteSignal = Route{"POST", "/v1/signal"}
	RouteReset  = Route{"POST", "/v1/reset"}
	RouteScale  = Route{"POST", "/v1/scale"}
)

// Routes is every route of the API, the table the daemon's handlers are checked against.
func Routes() []Route {
	return []Route{
		RoutePing, RouteList, RouteInfo, RouteStart, RouteStartMany, RouteStop, RouteRestart, RouteReload,
		RouteDelete, RouteSave, RouteResurrect, RouteKill, RouteUpdate, RoutePorts, RoutePortFree,
		RoutePlugins, RoutePluginAdd, RoutePluginEnsure, RoutePluginTrust, RoutePluginRemove,
		RouteEnv, RouteSignal, RouteReset, RouteScale,
	}
}
