package api

import _ "embed"

// OpenAPI is the API described as an OpenAPI 3 document, served at GET /v1/openapi.json.
// TestOpenAPIMatchesRoutes holds it to the route table, and the web e2e suite checks real
// answers against it.
//
//go:embed openapi.json
var OpenAPI []byte
