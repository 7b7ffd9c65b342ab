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
	// The web listener, the streams and the API's description (docs/web.md).
	RouteWeb       = Route{"GET", "/v1/web"}
	RouteWebSet    = Route{"POST", "/v1/web"}
	RouteWebToken  = Route{"POST", "/v1/web/token"}
	RouteMetrics   = Route{"GET", "/metrics"}
	RouteEvents    = Route{"GET", "/v1/events"}
	RouteLogStream = Route{"GET", "/v1/logs/stream"} // ?target=&lines=
	RouteOpenAPI   = Route{"GET", "/v1/openapi.json"}
)

// Routes is every route of the API, the table the daemon's handlers are checked against.
func Routes() []Route {
	return []Route{
		RoutePing, RouteList, RouteInfo, RouteStart, RouteStartMany, RouteStop, RouteRestart, RouteReload,
		RouteDelete, RouteSave, RouteResurrect, RouteKill, RouteUpdate, RoutePorts, RoutePortFree,
		RoutePlugins, RoutePluginAdd, RoutePluginEnsure, RoutePluginTrust, RoutePluginRemove,
		RouteEnv, RouteSignal, RouteReset, RouteScale,
		RouteWeb, RouteWebSet, RouteWebToken, RouteMetrics, RouteEvents, RouteLogStream, RouteOpenAPI,
	}
}

// Access is what a web token must be to call a route over the TCP listener of `pmdaemon web`
// (the unix socket's permission is its file mode, and it serves everything).
type Access string

const (
	// AccessRead routes look: list, info, logs, events, metrics.
	AccessRead Access = "read"
	// AccessAdmin routes act, or show what a read token must not see (an instance's
	// environment, the tokens).
	AccessAdmin Access = "admin"
)

// routeAccess marks every route of the table. A route missing here is admin (Access), so a
// route added without a thought is never open to read tokens; TestEveryRouteMarked fails on it.
var routeAccess = map[Route]Access{
	RoutePing: AccessRead, RouteList: AccessRead, RouteInfo: AccessRead, RoutePorts: AccessRead,
	RoutePortFree: AccessRead, RoutePlugins: AccessRead, RouteWeb: AccessRead, RouteMetrics: AccessRead,
	RouteEvents: AccessRead, RouteLogStream: AccessRead, RouteOpenAPI: AccessRead,

	RouteStart: AccessAdmin, RouteStartMany: AccessAdmin, RouteStop: AccessAdmin, RouteRestart: AccessAdmin,
	RouteReload: AccessAdmin, RouteDelete: AccessAdmin, RouteSave: AccessAdmin, RouteResurrect: AccessAdmin,
	RouteKill: AccessAdmin, RouteUpdate: AccessAdmin, RoutePluginAdd: AccessAdmin, RoutePluginEnsure: AccessAdmin,
	RoutePluginTrust: AccessAdmin, RoutePluginRemove: AccessAdmin, RouteEnv: AccessAdmin, RouteSignal: AccessAdmin,
	RouteReset: AccessAdmin, RouteScale: AccessAdmin, RouteWebSet: AccessAdmin, RouteWebToken: AccessAdmin,
}

// Access is the token a route needs over the web listener: its mark, or admin when unmarked.
func (r Route) Access() Access {
	if a, ok := routeAccess[r]; ok {
		return a
	}
	return AccessAdmin
}

// Marked reports whether the route has its own mark in the access table.
func (r Route) Marked() bool {
	_, ok := routeAccess[r]
	return ok
}
