package api

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3gen"

	"github.com/pmdaemon/pmdaemon/host/config"
)

// openapi.json is made from the route table and the wire types, so it cannot drift from them:
// after changing either, run
//
//	go test ./host/api -run TestOpenAPI -update
//
// and check the diff in. The daemon's tests hold the document to the handlers (every route
// served) and to real answers (host/daemon, TestOpenAPIAnswers).
var update = flag.Bool("update", false, "rewrite openapi.json from the route table and the wire types")

// opDoc describes one route for the document.
type opDoc struct {
	summary string
	query   []queryParam
	req     any    // the request body's type; nil: none
	resp    any    // the answer's type; nil with respType
	respCT  string // the answer's content type when it is not JSON
}

type queryParam struct {
	name, desc string
	required   bool
	integer    bool
}

// docs describes every route; TestOpenAPI fails when a route is missing here.
var docs = map[Route]opDoc{
	RoutePing:         {summary: "Liveness, version, process mode", resp: Ping{}},
	RouteList:         {summary: "One row per instance", resp: []Instance{}},
	RouteInfo:         {summary: "An app's configuration and instances", query: []queryParam{{"target", "an app name or instance id", true, false}}, resp: App{}},
	RouteStart:        {summary: "Start an app", req: StartRequest{}, resp: Started{}},
	RouteStartMany:    {summary: "Start several apps in order (an ecosystem file)", req: StartManyRequest{}, resp: StartManyResult{}},
	RouteStop:         {summary: "Stop a target", req: TargetRequest{}, resp: Result{}},
	RouteRestart:      {summary: "Restart a target, optionally on other ports", req: TargetRequest{}, resp: Result{}},
	RouteReload:       {summary: "Reload a target gracefully", req: TargetRequest{}, resp: Result{}},
	RouteDelete:       {summary: "Stop and forget a target", req: TargetRequest{}, resp: Result{}},
	RouteSave:         {summary: "Write dump.json", resp: Saved{}},
	RouteResurrect:    {summary: "Start what dump.json lists and is not running", resp: Result{}},
	RouteKill:         {summary: "Stop every app, then the daemon", resp: Killed{}},
	RouteUpdate:       {summary: "Hand the running apps over to the next daemon", resp: Handover{}},
	RoutePorts:        {summary: "The ports assigned to apps", resp: PortsAssigned{}},
	RoutePortFree:     {summary: "Whether a new app could get a port now", query: []queryParam{{"port", "the port", true, true}}, resp: PortFree{}},
	RoutePlugins:      {summary: "The registered plugins", resp: []PluginRow{}},
	RoutePluginAdd:    {summary: "Register a plugin", req: PluginAddRequest{}, resp: PluginRow{}},
	RoutePluginEnsure: {summary: "Register a plugin unless it is, as an ecosystem file declares it", req: PluginAddRequest{}, resp: PluginEnsured{}},
	RoutePluginTrust:  {summary: "Pin a plugin's binary as it is now", req: PluginNameRequest{}, resp: PluginRow{}},
	RoutePluginRemove: {summary: "Unregister a plugin", req: PluginNameRequest{}, resp: PluginRemoved{}},
	RouteEnv:          {summary: "An instance's environment", query: []queryParam{{"id", "an instance id", true, true}}, resp: InstanceEnv{}},
	RouteSignal:       {summary: "Send a signal to a target's processes", req: SignalRequest{}, resp: Signalled{}},
	RouteReset:        {summary: "Zero a target's restart counts", req: TargetRequest{}, resp: Result{}},
	RouteScale:        {summary: "Change an app's number of instances for good", req: ScaleRequest{}, resp: Scaled{}},
	RouteWeb:          {summary: "The web listener's state", resp: WebStatus{}},
	RouteWebSet:       {summary: "Open, move or close the web listener", req: WebRequest{}, resp: WebStatus{}},
	RouteWebToken:     {summary: "The admin or read token, made or rotated", req: WebTokenRequest{}, resp: WebToken{}},
	RouteMetrics:      {summary: "Prometheus metrics, read at scrape time", respCT: "text/plain"},
	RouteEvents:       {summary: "Lifecycle events as Server-Sent Events (data: an Event)", respCT: "text/event-stream"},
	RouteLogStream: {summary: "Log lines as Server-Sent Events (data: a LogLine)", respCT: "text/event-stream", query: []queryParam{
		{"target", "an app name, an instance id, or all", true, false},
		{"lines", "the last lines of each log to send first (0-1000)", false, true},
		{"stream", "out or err; both when left out", false, false},
	}},
	RouteOpenAPI: {summary: "This document", respCT: "application/json"},
}

// buildOpenAPI makes the document.
func buildOpenAPI(t *testing.T) *openapi3.T {
	t.Helper()
	schemas := openapi3.Schemas{}
	// StartRequest.App is a config.App that travels as an AppConfig (StartRequest.MarshalJSON).
	appConfig, err := openapi3gen.NewSchemaRefForValue(AppConfig{}, schemas, genOptions(nil)...)
	if err != nil {
		t.Fatal(err)
	}
	opts := genOptions(appConfig.Value)
	doc := &openapi3.T{
		OpenAPI: "3.0.3",
		Info: &openapi3.Info{
			Title:       "pmdaemon API",
			Version:     Version,
			Description: "The daemon's API, on $PMDAEMON_HOME/daemon.sock and on the TCP listener of `pmdaemon web` (docs/api.md, docs/web.md). Over TCP every request needs a bearer token; x-pmdaemon-access says which.",
		},
		Paths:      openapi3.NewPaths(),
		Components: &openapi3.Components{Schemas: schemas, SecuritySchemes: openapi3.SecuritySchemes{}},
		Security:   openapi3.SecurityRequirements{{"token": []string{}}},
	}
	doc.Components.SecuritySchemes["token"] = &openapi3.SecuritySchemeRef{Value: openapi3.NewSecurityScheme().WithType("http").WithScheme("bearer")}
	errRef, err := openapi3gen.NewSchemaRefForValue(Error{}, schemas, opts...)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range Routes() {
		d, ok := docs[r]
		if !ok {
			t.Fatalf("route %s is not described in openapi_test.go's docs", r)
		}
		op := openapi3.NewOperation()
		op.OperationID = r.Method + r.Path
		op.Summary = d.summary
		op.Extensions = map[string]any{"x-pmdaemon-access": string(r.Access())}
		for _, q := range d.query {
			p := openapi3.NewQueryParameter(q.name).WithDescription(q.desc).WithRequired(q.required)
			if q.integer {
				p.Schema = openapi3.NewIntegerSchema().NewRef()
			} else {
				p.Schema = openapi3.NewStringSchema().NewRef()
			}
			op.AddParameter(p)
		}
		if d.req != nil {
			ref, err := openapi3gen.NewSchemaRefForValue(d.req, schemas, opts...)
			if err != nil {
				t.Fatal(err)
			}
			op.RequestBody = &openapi3.RequestBodyRef{Value: openapi3.NewRequestBody().WithRequired(true).WithJSONSchemaRef(ref)}
		}
		ok200 := openapi3.NewResponse().WithDescription("OK")
		switch {
		case d.resp != nil:
			ref, err := openapi3gen.NewSchemaRefForValue(d.resp, schemas, opts...)
			if err != nil {
				t.Fatal(err)
			}
			ok200.WithJSONSchemaRef(ref)
		case d.respCT == "application/json":
			ok200.WithContent(openapi3.NewContentWithSchema(openapi3.NewObjectSchema(), []string{d.respCT}))
		default:
			ok200.WithContent(openapi3.NewContentWithSchema(openapi3.NewStringSchema(), []string{d.respCT}))
		}
		op.AddResponse(200, ok200)
		op.Responses.Set("default", &openapi3.ResponseRef{Value: openapi3.NewResponse().
			WithDescription("An error: 400 invalid, 401 no valid token, 403 read token for an admin route, 404 not found, 409 conflict, 413 too large, 503 unavailable, 500 internal").
			WithJSONSchemaRef(errRef)})
		doc.AddOperation(r.Path, r.Method, op)
	}
	return doc
}

// genOptions: component schemas by type name; nil slices and maps encode as null; a Duration
// is a string ("1.5s") or a whole number of nanoseconds; app (a config.App) is an AppConfig.
func genOptions(appConfig *openapi3.Schema) []openapi3gen.Option {
	durationType := reflect.TypeFor[Duration]()
	appType := reflect.TypeFor[config.App]()
	apiPkg := reflect.TypeFor[Route]().PkgPath()
	return []openapi3gen.Option{
		// Types of other packages are named with theirs: config.App is not App.
		openapi3gen.CreateTypeNameGenerator(func(t reflect.Type) string {
			if t.PkgPath() == apiPkg || t.PkgPath() == "" {
				return t.Name()
			}
			pkg := path.Base(t.PkgPath())
			return strings.ToUpper(pkg[:1]) + pkg[1:] + t.Name()
		}),
		openapi3gen.CreateComponentSchemas(openapi3gen.ExportComponentSchemasOptions{ExportComponentSchemas: true}),
		openapi3gen.SchemaCustomizer(func(name string, t reflect.Type, tag reflect.StructTag, s *openapi3.Schema) error {
			switch {
			case t == durationType:
				*s = openapi3.Schema{Description: `a duration: a Go duration string such as "1.5s" or "500ms" (as answers give it), or a whole number of nanoseconds`}
			case t == appType && appConfig != nil:
				*s = *appConfig
			case t.Kind() == reflect.Slice || t.Kind() == reflect.Map:
				s.Nullable = true
			}
			return nil
		}),
	}
}

// The checked-in document is the one the route table and the wire types make, it is a valid
// OpenAPI 3 document, and it describes every route with its access.
func TestOpenAPI(t *testing.T) {
	doc := buildOpenAPI(t)
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	b = append(b, '\n')
	if *update {
		if err := os.WriteFile("openapi.json", b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(b, OpenAPI) {
		t.Fatal("openapi.json is not what the route table and the wire types make: run go test ./host/api -run TestOpenAPI -update")
	}
	loaded, err := openapi3.NewLoader().LoadFromData(OpenAPI)
	if err != nil {
		t.Fatal(err)
	}
	if err := loaded.Validate(context.Background()); err != nil {
		t.Fatalf("openapi.json is not a valid OpenAPI 3 document: %v", err)
	}
	var described []string
	for path, item := range loaded.Paths.Map() {
		for method, op := range item.Operations() {
			r := Route{method, path}
			described = append(described, r.Pattern())
			if got := op.Extensions["x-pmdaemon-access"]; got != string(r.Access()) {
				t.Errorf("%s: access %v in the document, %s in the route table", r, got, r.Access())
			}
		}
	}
	var routes []string
	for _, r := range Routes() {
		routes = append(routes, r.Pattern())
	}
	sort.Strings(described)
	sort.Strings(routes)
	if !reflect.DeepEqual(described, routes) {
		t.Errorf("the document describes %v\nthe route table has %v", described, routes)
	}
}

// Every route has its own read or admin mark: one missing would fall to admin, but should be
// decided, not defaulted.
func TestEveryRouteMarked(t *testing.T) {
	for _, r := range Routes() {
		if !r.Marked() {
			t.Errorf("route %s has no access mark in routeAccess (read or admin)", r)
		}
		if r.Method != "GET" && r.Access() == AccessRead {
			t.Errorf("route %s changes something but is open to read tokens", r)
		}
	}
}
