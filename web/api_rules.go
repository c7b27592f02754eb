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

// rulesData is what the rules page shows: the groups of GET /api/v1/rules.
func (s *server) rulesData() any {
	if s.d.Rules == nil {
		return struct{ Groups []struct{} }{}
	}
	return s.d.Rules()
}

func (s *server) rulesPage(w http.ResponseWriter, r *http.Request) {
	s.render(w, r, http.StatusOK, "rules", page{Title: "Prometheus rules", Nav: "rules", Data: s.rulesData()})
}
