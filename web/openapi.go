package web

import (
	_ "embed"
	"net/http"
)

// openAPIDoc describes the JSON API; TestOpenAPIMatchesRoutes keeps it and
// the route table in step.
//
//go:embed assets/openapi.json
var openAPIDoc []byte

func (s *server) openAPI(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(openAPIDoc)
}
