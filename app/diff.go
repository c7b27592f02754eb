package app

import (
	"fmt"
	"net/url"
	"path/filepath"
	"reflect"
	"strings"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/config"
)

// Diff lists what changed from one configuration to the next, one line per
// change ("heartbeat hb-a: period 1h → 5s", "notifier slack-web:
// webhook.url changed", "token ci: added"). Only durations, numbers and
// booleans are shown with their values; text is only said to have changed,
// so that no secret, URL or expression reaches a log.
func Diff(old, cur *config.Set) []string {
	var out []string
	add := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }
	oc, nc := old.Config, cur.Config
	if oc == nil || nc == nil {
		return nil
	}
	rel := func(set *config.Set, f string) string {
		if r, err := filepath.Rel(set.Dir(), f); err == nil {
			return r
		}
		return f
	}
	named(&out, "file", old.Files, cur.Files, func(f string) string { return rel(old, f) }, false)
	named(&out, "assert", old.Asserts, cur.Asserts, nil, false)
	named(&out, "remediation", old.Remediations, cur.Remediations, nil, false)
	named(&out, "heartbeat", oc.Heartbeats, nc.Heartbeats, nil, true)
	named(&out, "notifier", oc.Notifiers, nc.Notifiers, nil, false)
	named(&out, "escalation policy", oc.EscalationPolicies, nc.EscalationPolicies, nil, true)
	named(&out, "token", oc.Web.Tokens, nc.Web.Tokens, nil, false)
	named(&out, "source", oc.Sources.Prometheus, nc.Sources.Prometheus, nil, true)
	named(&out, "scrape target", oc.Sources.Embedded.Targets, nc.Sources.Embedded.Targets,
		func(t config.ScrapeTarget) string { return redactURL(t.URL) }, false)

	for _, s := range []struct {
		name     string
		old, cur any
	}{
		{"defaults", oc.Defaults, nc.Defaults},
		{"safety", oc.Safety, nc.Safety},
		{"sources.default", oc.Sources.Default, nc.Sources.Default},
		{"sources.embedded.scrape_interval", oc.Sources.Embedded.ScrapeInterval, nc.Sources.Embedded.ScrapeInterval},
		{"sources.embedded.scrape_timeout", oc.Sources.Embedded.ScrapeTimeout, nc.Sources.Embedded.ScrapeTimeout},
		{"web.public_read", oc.Web.PublicRead, nc.Web.PublicRead},
		{"web.public_write", oc.Web.PublicWrite, nc.Web.PublicWrite},
		{"web.external_url", oc.Web.ExternalURL, nc.Web.ExternalURL},
	} {
		out = append(out, fieldChanges(s.name, reflect.ValueOf(s.old), reflect.ValueOf(s.cur), true)...)
	}
	for _, s := range []struct {
		name     string
		old, cur any
	}{
		{"store", oc.Store, nc.Store},
		{"data_dir", old.DataDir(), cur.DataDir()},
		{"web.listen", oc.Web.Listen, nc.Web.Listen},
		{"web.ingest_listen", oc.Web.IngestListen, nc.Web.IngestListen},
		{"sources.embedded.retention", oc.Sources.Embedded.Retention, nc.Sources.Embedded.Retention},
	} {
		if !reflect.DeepEqual(s.old, s.cur) {
			add("%s: changed; it takes effect at the next start", s.name)
		}
	}
	return out
}

// named compares two lists of named things: added, removed, and for those in
// both, what changed in them. name gives an element's name (nil: its Name
// field); show says whether durations and numbers are shown with values.
func named[T any](out *[]string, kind string, old, cur []T, name func(T) string, show bool) {
	if name == nil {
		name = func(x T) string { return nameOf(x) }
	}
	byName := func(l []T) (map[string]T, []string) {
		m, order := map[string]T{}, []string{}
		for _, x := range l {
			n := name(x)
			if _, dup := m[n]; !dup {
				order = append(order, n)
			}
			m[n] = x
		}
		return m, order
	}
	om, oorder := byName(old)
	nm, norder := byName(cur)
	for _, n := range oorder {
		if _, ok := nm[n]; !ok {
			*out = append(*out, fmt.Sprintf("%s %s: removed", kind, n))
		}
	}
	for _, n := range norder {
		o, ok := om[n]
		if !ok {
			*out = append(*out, fmt.Sprintf("%s %s: added", kind, n))
			continue
		}
		for _, c := range fieldChanges("", reflect.ValueOf(o), reflect.ValueOf(nm[n]), show) {
			*out = append(*out, fmt.Sprintf("%s %s: %s", kind, n, c))
		}
	}
}

// nameOf is the Name field of a (pointer to a) struct, or the value itself
// when it is a string.
func nameOf(x any) string {
	v := reflect.ValueOf(x)
	for v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return ""
		}
		v = v.Elem()
	}
	switch v.Kind() {
	case reflect.String:
		return v.String()
	case reflect.Struct:
		if f := v.FieldByName("Name"); f.IsValid() && f.Kind() == reflect.String {
			return f.String()
		}
	}
	return fmt.Sprint(x)
}

var durationType = reflect.TypeFor[assertd.Duration]()

// fieldChanges lists the configured fields that differ between a and b,
// by their YAML path. Compiled forms are compared by what was written: a
// struct embedding its source (a *Assert in asserts.Compiled) is compared
// on that source only.
func fieldChanges(path string, a, b reflect.Value, show bool) []string {
	for a.Kind() == reflect.Pointer || a.Kind() == reflect.Interface {
		if a.IsNil() || b.IsNil() {
			switch {
			case a.IsNil() && b.IsNil():
				return nil
			case a.IsNil():
				return []string{orValue(path) + " added"}
			default:
				return []string{orValue(path) + " removed"}
			}
		}
		a, b = a.Elem(), b.Elem()
	}
	if a.Kind() == reflect.Struct {
		t := a.Type()
		// A compiled form: compare what it was compiled from.
		if t.NumField() > 0 && t.Field(0).Anonymous && t.Field(0).Type.Kind() == reflect.Pointer {
			return fieldChanges(path, a.Field(0), b.Field(0), show)
		}
		if t != durationType && t.NumField() > 0 {
			var out []string
			for i := range t.NumField() {
				f := t.Field(i)
				tag := strings.Split(f.Tag.Get("yaml"), ",")[0]
				if !f.IsExported() || tag == "-" {
					continue
				}
				if tag == "" {
					tag = strings.ToLower(f.Name)
				}
				p := tag
				if path != "" {
					p = path + "." + tag
				}
				out = append(out, fieldChanges(p, a.Field(i), b.Field(i), show)...)
			}
			return out
		}
	}
	if reflect.DeepEqual(a.Interface(), b.Interface()) {
		return nil
	}
	if show {
		switch {
		case a.Type() == durationType:
			return []string{fmt.Sprintf("%s %s → %s", orValue(path), durValue(a), durValue(b))}
		case a.Kind() == reflect.Bool, a.CanInt(), a.CanFloat():
			return []string{fmt.Sprintf("%s %v → %v", orValue(path), a.Interface(), b.Interface())}
		}
	}
	return []string{orValue(path) + " changed"}
}

func durValue(v reflect.Value) string {
	d := v.Interface().(assertd.Duration)
	if d == 0 {
		return "unset"
	}
	return d.String()
}

func orValue(path string) string {
	if path == "" {
		return "value"
	}
	return path
}

// redactURL drops a URL's user information for a log line.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(an invalid URL)"
	}
	return u.Redacted()
}
