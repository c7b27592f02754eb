package sources

import (
	"net/http"

	"github.com/prometheus/prometheus/model/labels"
)

func labelsOf(kv ...string) labels.Labels { return labels.FromStrings(kv...) }

// asWriter serves h as the listener does once it has authenticated w.
func asWriter(h http.Handler, w Writer) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(rw, r.WithContext(WithWriter(r.Context(), w)))
	})
}
