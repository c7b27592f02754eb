package web

import "net/http"

// apiRules is GET /api/v1/rules in Prometheus' envelope: the groups of the
// Prometheus rule files, their rules (each with its file, group and index:
// rule names need not be unique) and their active alerts.
func (s *server) apiRules(w http.ResponseWriter, r *http.Request) {
	var data any = map[string]any{"groups": []any{}}
	if s.d.Rules != nil {
		data = s.d.Rules()
	}
	writeJSON(w, http.StatusOK, map[string]any{"status": "success", "data": data})
}
