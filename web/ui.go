package web

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"math"
	"net"
	"net/http"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/assertd/assertd"
)

// The UI: server-rendered pages from embedded templates and assets.

//go:embed assets/templates/*.html assets/static/*
var assetFS embed.FS

// pages holds one template set per page, each with the layout.
type pages struct {
	sets   map[string]*template.Template
	static fs.FS
}

func loadPages(now func() time.Time) (*pages, error) {
	funcs := template.FuncMap{
		"ago":        func(t time.Time) string { return ago(now(), t) },
		"until":      func(t time.Time) string { return until(now(), t) },
		"ts":         stamp,
		"labels":     func(l assertd.Labels) string { return l.String() },
		"value":      formatValue,
		"stateClass": func(s assertd.State) string { return "st-" + string(s) },
		"lower":      strings.ToLower,
		"sortedKeys": sortedKeys,
		"isAdmin":    func(p principal) bool { return p.Role >= roleAdmin },
		"query":      func(k, v string) template.URL { return template.URL(k + "=" + urlEscape(v)) },
		"instURL": func(assert, fp string) string {
			return "/instances/" + pathEscape(assert) + "/" + pathEscape(fp)
		},
		"join": strings.Join,
	}
	layout, err := template.New("layout").Funcs(funcs).ParseFS(assetFS, "assets/templates/layout.html", "assets/templates/parts.html")
	if err != nil {
		return nil, fmt.Errorf("web templates: %w", err)
	}
	names, err := fs.Glob(assetFS, "assets/templates/page_*.html")
	if err != nil {
		return nil, err
	}
	p := &pages{sets: map[string]*template.Template{}}
	for _, n := range names {
		t, err := template.Must(layout.Clone()).ParseFS(assetFS, n)
		if err != nil {
			return nil, fmt.Errorf("web templates: %w", err)
		}
		p.sets[strings.TrimSuffix(strings.TrimPrefix(path.Base(n), "page_"), ".html")] = t
	}
	p.static, _ = fs.Sub(assetFS, "assets/static")
	return p, nil
}

func pathEscape(s string) string { return strings.ReplaceAll(template.URLQueryEscaper(s), "+", "%20") }

// page is what every page template gets.
type page struct {
	Title      string
	Nav        string // which menu entry is current
	Problems   int
	Version    string // of the instance states, for live updates
	User       principal
	CSRF       string
	KillSwitch bool
	Flash      string
	Error      string
	Data       any
}

// render writes a page. Templates render to a buffer first so that an error
// never leaves half a page.
func (s *server) render(w http.ResponseWriter, r *http.Request, status int, name string, pg page) {
	p := principalOf(r.Context())
	pg.User = p
	if p.session != nil {
		pg.CSRF = p.session.csrf
	}
	snap := s.snapshot()
	pg.Problems, pg.Version = snap.Problems, snap.Version
	pg.KillSwitch = s.killSwitch(r.Context())
	if pg.Flash == "" {
		pg.Flash = flashText(r.URL.Query().Get("done"))
	}
	t := s.pages.sets[name]
	if t == nil {
		http.Error(w, "no page "+name, http.StatusInternalServerError)
		return
	}
	var b bytes.Buffer
	if err := t.ExecuteTemplate(&b, "layout", pg); err != nil {
		s.log.Error("rendering page", "page", name, "err", err)
		http.Error(w, "the page could not be rendered: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(b.Bytes())
}

// flashText turns ?done= into a message; only known words are shown.
func flashText(done string) string {
	switch done {
	case "silence":
		return "Silence created."
	case "expired":
		return "Silence expired."
	case "setting":
		return "Setting saved."
	case "ack":
		return "Acknowledged."
	case "approved":
		return "Decision recorded."
	}
	return ""
}

// errorPage shows an error on a page, with its status.
func (s *server) errorPage(w http.ResponseWriter, r *http.Request, status int, msg string) {
	s.render(w, r, status, "error", page{Title: http.StatusText(status), Error: msg, Data: status})
}

// formFail shows a form's error: bad input on the page, others by status.
func (s *server) formFail(w http.ResponseWriter, r *http.Request, err error) {
	status, _, msg := errStatus(err)
	if status >= 500 {
		s.log.Error("form", "path", r.URL.Path, "err", err)
	}
	s.errorPage(w, r, status, msg)
}

func (s *server) static(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("file")
	b, err := fs.ReadFile(s.pages.static, name)
	if err != nil {
		writeError(w, http.StatusNotFound, "", "no file "+name)
		return
	}
	switch path.Ext(name) {
	case ".css":
		w.Header().Set("Content-Type", "text/css; charset=utf-8")
	case ".js":
		w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
	case ".svg":
		w.Header().Set("Content-Type", "image/svg+xml")
	}
	w.Header().Set("Cache-Control", "public, max-age=300")
	_, _ = w.Write(b)
}

func (s *server) loginPage(w http.ResponseWriter, r *http.Request) {
	s.render(w, r, http.StatusOK, "login", page{Title: "Sign in", Data: safeNext(r.URL.Query().Get("next"))})
}

// login checks a token typed into the form and starts a session. The token
// itself is not kept: the cookie holds a random session ID.
func (s *server) login(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		s.errorPage(w, r, bodyErrorStatus(err), "form: "+err.Error())
		return
	}
	next := safeNext(r.PostForm.Get("next"))
	client := clientAddr(r)
	now := s.now()
	if wait := s.logins.blocked(client, now); wait > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(wait.Round(time.Second).Seconds())+1))
		s.render(w, r, http.StatusTooManyRequests, "login", page{Title: "Sign in", Error: "Too many failed sign-ins from your address: try again in " + human(wait+time.Second) + ".", Data: next})
		return
	}
	t, ok := s.lookup(strings.TrimSpace(r.PostForm.Get("token")))
	if !ok {
		s.logins.failed(client, now)
		s.log.Warn("UI sign-in refused: unknown token", "remote", r.RemoteAddr)
		s.render(w, r, http.StatusUnauthorized, "login", page{Title: "Sign in", Error: "That token is not valid.", Data: next})
		return
	}
	ss := s.sessions.create(t, now)
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: ss.id, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode,
		Secure: s.secureCookies(r), MaxAge: int(s.d.SessionTTL.Seconds())})
	s.log.Info("UI sign-in", "token", t.name, "role", t.role.String())
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (s *server) logout(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(sessionCookie); err == nil {
		s.sessions.drop(c.Value)
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", HttpOnly: true, MaxAge: -1, SameSite: http.SameSiteStrictMode,
		Secure: s.secureCookies(r)})
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

// secureCookies reports whether cookies go over https only: the request
// came over TLS, or web.external_url is https (TLS ended by a proxy).
func (s *server) secureCookies(r *http.Request) bool {
	return r.TLS != nil || s.access.policy().secure
}

// clientAddr is the address a request came from (no port), the key of the
// limit on failed sign-ins. Forwarded headers are not trusted.
func clientAddr(r *http.Request) string {
	if h, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return h
	}
	return r.RemoteAddr
}

// Formatting for the templates.

func stamp(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04:05Z")
}

func human(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}

func ago(now, t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	if d := now.Sub(t); d >= 0 {
		return human(d) + " ago"
	}
	return "in " + human(t.Sub(now))
}

func until(now, t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	if d := t.Sub(now); d >= 0 {
		return "in " + human(d)
	}
	return human(now.Sub(t)) + " overdue"
}

func formatValue(v float64) string {
	switch {
	case math.IsNaN(v):
		return "NaN"
	case math.IsInf(v, 0):
		return strconv.FormatFloat(v, 'f', -1, 64)
	case v == math.Trunc(v) && math.Abs(v) < 1e15:
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	return strconv.FormatFloat(v, 'g', 4, 64)
}

func sortedKeys(m map[string]float64) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
