package heartbeat

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/asserts"
)

// Limits on what a ping may carry.
const (
	// MaxBody is the largest ping body, in bytes. The ping handler answers
	// a longer one 413 and records nothing; Ping, for callers in Go, cuts
	// a longer body (at a character boundary) and appends TruncatedMarker,
	// so a stored body is at most MaxBody+len(TruncatedMarker) bytes.
	MaxBody = 10000
	// MaxRunID is the longest accepted ?rid=.
	MaxRunID = 64
	// maxKey is the longest accepted ping key (and key file).
	maxKey = 1024
	// MinProjectKey is the shortest accepted project ping key.
	MinProjectKey = 16
	// replayPings is how many recent pings are read at start-up to rebuild
	// the runs in progress.
	replayPings = 1000
)

// TruncatedMarker ends a stored ping body that was cut to MaxBody bytes.
const TruncatedMarker = "\n[assertd: body truncated]"

// Errors returned by Ping, Pause and Resume; test them with errors.Is.
var (
	ErrUnknown     = errors.New("unknown heartbeat")
	ErrInvalidPing = errors.New("invalid ping")
	ErrLimit       = errors.New("too many heartbeats created")
)

var runIDRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]*$`)

const ridRule = "a rid is 1 to 64 letters, digits, '.', '_', ':' or '-' (a UUID fits), starting with a letter or digit"

// CheckRunID checks a ?rid= run id: up to 64 letters, digits, '.', '_', ':'
// and '-' (a UUID fits), starting with a letter or digit.
func CheckRunID(rid string) error {
	if len(rid) > MaxRunID || !runIDRE.MatchString(rid) {
		return fmt.Errorf("%w: %s", ErrInvalidPing, ridRule)
	}
	return nil
}

// Options tune a Tracker.
type Options struct {
	// Now is the clock used to stamp heartbeats seen for the first time
	// (their Created). Default time.Now.
	Now func() time.Time
	// LookupEnv resolves key_env. Default os.LookupEnv.
	LookupEnv func(string) (string, bool)
	// Logger receives pings that could not be stored. Default slog.Default().
	Logger *slog.Logger
}

// Tracker follows the declared heartbeats: it takes their pings, keeps their
// state durable through a Store and computes their states from an injected
// time. It is safe for concurrent use.
type Tracker struct {
	store     Store
	log       *slog.Logger
	now       func() time.Time
	lookupEnv func(string) (string, bool)
	decl      atomic.Pointer[declared] // replaced whole by Swap
	rejected  [numReasons]atomic.Uint64
	createMu  sync.Mutex // serializes changes of decl: created heartbeats, Swap, retire
}

// declared is the set of heartbeats in force.
type declared struct {
	entries map[string]*entry
	names   []string            // sorted
	uuids   map[string]*entry   // by lower-case uuid
	pingKey *[sha256.Size]byte  // the project ping key; nil: none
	created map[string][]string // pattern declaration → the heartbeats created from it, sorted
}

type entry struct {
	name string

	pingMu sync.Mutex // serializes writes of this heartbeat (held during store I/O)
	mu     sync.RWMutex
	spec   spec               // under mu: Swap changes it
	key    *[sha256.Size]byte // under mu; nil: the heartbeat has no key of its own
	public bool               // under mu: pings need no key
	uuid   string             // under mu; "" when none
	// A pattern declaration (create:) has a prefix; a heartbeat created from
	// one names it as its parent.
	prefix string // under mu
	max    int    // under mu
	parent string
	rec    assertd.HeartbeatRecord
	runs   []run
	pings  [numKinds]atomic.Uint64
}

// New builds a Tracker for the declared heartbeats, resolving their ping
// keys and loading their stored state. A heartbeat seen for the first time is
// stored as new, Created now, so its age survives restarts.
//
// pings holds the project ping key (by reference): with it, every heartbeat
// takes pings at /ping/<ping-key>/<name> and with ?key=<ping-key>.
func New(ctx context.Context, hbs []*asserts.CompiledHeartbeat, pings asserts.Pings, store Store, opts Options) (*Tracker, error) {
	if store == nil {
		return nil, errors.New("heartbeat tracker: no store")
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.LookupEnv == nil {
		opts.LookupEnv = os.LookupEnv
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	t := &Tracker{store: store, log: opts.Logger, now: opts.Now, lookupEnv: opts.LookupEnv}
	t.decl.Store(&declared{entries: map[string]*entry{}})
	n, err := t.Prepare(ctx, hbs, pings)
	if err != nil {
		return nil, err
	}
	for _, e := range n.fresh {
		if err := store.SaveHeartbeat(ctx, e.rec); err != nil {
			return nil, fmt.Errorf("save new heartbeat %q: %w", e.name, err)
		}
	}
	n.fresh = nil
	t.decl.Store(n.d)
	t.warnPublic(n.d)
	return t, nil
}

// warnPublic says at start and at each reload which heartbeats take pings
// from anyone who reaches the listener.
func (t *Tracker) warnPublic(d *declared) {
	for _, name := range d.names {
		if e := d.entries[name]; e.public {
			t.log.Warn("heartbeat takes pings without a key (public: true): anyone who reaches the listener can ping it", "heartbeat", name)
		}
	}
}

// declare checks the declared heartbeats and resolves their keys.
func (t *Tracker) declare(hbs []*asserts.CompiledHeartbeat, pings asserts.Pings) (*declared, error) {
	d := &declared{entries: make(map[string]*entry, len(hbs)), uuids: map[string]*entry{}, created: map[string][]string{}}
	pk, err := resolveProjectKey(pings, t.lookupEnv)
	if err != nil {
		return nil, err
	}
	d.pingKey = pk
	for i, c := range hbs {
		if c == nil || c.Heartbeat == nil {
			return nil, fmt.Errorf("heartbeat #%d is nil", i+1)
		}
		if err := assertd.CheckName("heartbeat", c.Name); err != nil {
			return nil, err
		}
		if _, dup := d.entries[c.Name]; dup {
			return nil, fmt.Errorf("heartbeat %q is declared twice", c.Name)
		}
		if c.Schedule == nil && c.Period <= 0 {
			return nil, fmt.Errorf("heartbeat %q has neither a period nor a schedule", c.Name)
		}
		if c.Grace < 0 || c.MaxRuntime < 0 {
			return nil, fmt.Errorf("heartbeat %q: grace and max_runtime must not be negative", c.Name)
		}
		key, err := resolveKey(c.Heartbeat, t.lookupEnv)
		if err != nil {
			return nil, err
		}
		e := &entry{name: c.Name, spec: specOf(c), key: key, public: c.Public}
		if c.Create != nil {
			e.prefix, e.max = c.Create.Prefix, c.CreateMax
		}
		if c.Public && (key != nil || c.UUID != "") {
			return nil, fmt.Errorf("heartbeat %q: public: true with a key or a uuid: remove one", c.Name)
		}
		if c.UUID != "" {
			u, err := asserts.CheckUUID(c.UUID)
			if err != nil {
				return nil, fmt.Errorf("heartbeat %q: %w", c.Name, err)
			}
			if d.uuids[u] != nil {
				return nil, fmt.Errorf("heartbeat %q has the uuid of heartbeat %q", c.Name, d.uuids[u].name)
			}
			e.uuid = u
			d.uuids[u] = e
		}
		d.entries[c.Name] = e
		d.names = append(d.names, c.Name)
	}
	if pk != nil {
		for _, name := range d.names {
			if sum := sha256.Sum256([]byte(name)); subtle.ConstantTimeCompare(sum[:], pk[:]) == 1 {
				return nil, fmt.Errorf("the project ping key is the name of heartbeat %q: /ping/<ping-key>/<name> would be ambiguous; choose a random key", name)
			}
		}
	}
	slices.Sort(d.names)
	return d, nil
}

// load gives heartbeats not followed so far their stored state (a new
// record, Created now, when there is none: fresh reports those).
func (t *Tracker) load(ctx context.Context, es []*entry) (fresh []*entry, err error) {
	if len(es) == 0 {
		return nil, nil
	}
	recs, err := t.store.LoadHeartbeats(ctx)
	if err != nil {
		return nil, fmt.Errorf("load heartbeats: %w", err)
	}
	stored := map[string]assertd.HeartbeatRecord{}
	for _, r := range recs {
		stored[r.Name] = r
	}
	now := t.now()
	for _, e := range es {
		r, ok := stored[e.name]
		if !ok {
			r = assertd.HeartbeatRecord{Name: e.name, Created: now}
			fresh = append(fresh, e)
		}
		e.rec = r
		if !r.LastStart.IsZero() {
			recent, err := t.store.RecentPings(ctx, e.name, replayPings)
			if err != nil {
				return nil, fmt.Errorf("load pings of heartbeat %q: %w", e.name, err)
			}
			e.runs = replay(r, recent)
		}
	}
	return fresh, nil
}

// resolveKey reads a heartbeat's ping key. Errors name the heartbeat and the
// setting, never the key.
func resolveKey(h *asserts.Heartbeat, lookup func(string) (string, bool)) (*[sha256.Size]byte, error) {
	key, err := readKey(fmt.Sprintf("heartbeat %q", h.Name), h.KeyEnv, h.KeyFile, lookup)
	if err != nil || key == "" {
		return nil, err
	}
	sum := sha256.Sum256([]byte(key))
	return &sum, nil
}

var projectKeyRE = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// resolveProjectKey reads the project ping key: it stands in URL paths, so
// it is at least MinProjectKey letters, digits, '-' or '_'.
func resolveProjectKey(p asserts.Pings, lookup func(string) (string, bool)) (*[sha256.Size]byte, error) {
	key, err := readKey("pings", p.KeyEnv, p.KeyFile, lookup)
	if err != nil || key == "" {
		return nil, err
	}
	if len(key) < MinProjectKey || !projectKeyRE.MatchString(key) {
		return nil, fmt.Errorf("pings: the project ping key from %s must be at least %d letters, digits, '-' or '_' (make one with: head -c 18 /dev/urandom | base64 | tr '+/' '-_')",
			keySetting(p.KeyEnv, p.KeyFile), MinProjectKey)
	}
	sum := sha256.Sum256([]byte(key))
	return &sum, nil
}

// readKey reads a key from the environment variable env or the file file
// ("" when neither is set). Errors name what and the setting, never the key.
func readKey(what, env, file string, lookup func(string) (string, bool)) (string, error) {
	var key string
	switch {
	case env != "" && file != "":
		return "", fmt.Errorf("%s: set key_env or key_file, not both", what)
	case env != "":
		v, ok := lookup(env)
		if !ok {
			return "", fmt.Errorf("%s: key_env %s is not set in assertd's environment", what, env)
		}
		key = strings.TrimSpace(v)
		if key == "" {
			return "", fmt.Errorf("%s: key_env %s is empty", what, env)
		}
	case file != "":
		f, err := os.Open(file)
		if err != nil {
			return "", fmt.Errorf("%s: key_file: %w", what, err)
		}
		defer f.Close()
		b, err := io.ReadAll(io.LimitReader(f, maxKey+2))
		if err != nil {
			return "", fmt.Errorf("%s: key_file %s: %w", what, file, err)
		}
		key = strings.TrimSpace(string(b))
		if key == "" {
			return "", fmt.Errorf("%s: key_file %s is empty", what, file)
		}
	default:
		return "", nil
	}
	if len(key) > maxKey || !utf8.ValidString(key) || strings.ContainsAny(key, "\r\n\x00") {
		return "", fmt.Errorf("%s: the ping key from %s must be one line of at most %d bytes", what, keySetting(env, file), maxKey)
	}
	return key, nil
}

func keySetting(env, file string) string {
	if env != "" {
		return "key_env " + env
	}
	return "key_file " + file
}

// Names returns the declared heartbeats, sorted.
func (t *Tracker) Names() []string { return slices.Clone(t.decl.Load().names) }

// entry returns the declared heartbeat name, or nil.
func (t *Tracker) entry(name string) *entry { return t.decl.Load().entries[name] }

// Known reports whether name is a declared heartbeat.
func (t *Tracker) Known(name string) bool { return t.entry(name) != nil }

// NeedsKey reports whether pings of name by its name must carry a key: all
// but public heartbeats do.
func (t *Tracker) NeedsKey(name string) bool {
	e := t.entry(name)
	if e == nil {
		return false
	}
	e.mu.RLock()
	defer e.mu.RUnlock()
	return !e.public
}

// CheckKey reports whether key lets a ping reach name by its name: it is
// the heartbeat's own key or the project ping key, or the heartbeat is
// public. Keys are compared in constant time (by their SHA-256, so the
// comparison depends neither on where, or whether, they differ nor on their
// lengths).
func (t *Tracker) CheckKey(name, key string) bool {
	d := t.decl.Load()
	e := d.entries[name]
	if e == nil {
		return false
	}
	e.mu.RLock()
	own, public := e.key, e.public
	e.mu.RUnlock()
	if public {
		return true
	}
	sum := sha256.Sum256([]byte(key))
	okOwn := own != nil && subtle.ConstantTimeCompare(sum[:], own[:]) == 1
	okProject := d.pingKey != nil && subtle.ConstantTimeCompare(sum[:], d.pingKey[:]) == 1
	return okOwn || okProject
}

// checkProjectKey compares key with the project ping key in constant time;
// false when there is none.
func (d *declared) checkProjectKey(key string) bool {
	sum := sha256.Sum256([]byte(key))
	return d.pingKey != nil && subtle.ConstantTimeCompare(sum[:], d.pingKey[:]) == 1
}

// Record returns the stored record of name.
func (t *Tracker) Record(name string) (assertd.HeartbeatRecord, bool) {
	e := t.entry(name)
	if e == nil {
		return assertd.HeartbeatRecord{}, false
	}
	e.mu.RLock()
	defer e.mu.RUnlock()
	return e.rec, true
}

// State returns the state of name at now; false when name is not declared.
func (t *Tracker) State(name string, now time.Time) (State, bool) {
	d := t.decl.Load()
	e := d.entries[name]
	if e == nil {
		return "", false
	}
	st, _, _ := d.evaluate(e, now)
	return st, true
}

// Status returns what heartbeat("name") evaluates to at now; false when name
// is not declared.
func (t *Tracker) Status(name string, now time.Time) (asserts.HeartbeatStatus, bool) {
	d := t.decl.Load()
	e := d.entries[name]
	if e == nil {
		return asserts.HeartbeatStatus{}, false
	}
	_, _, hs := d.evaluate(e, now)
	return hs, true
}

// NextDeadline returns the instant after now at which the state of name will
// change unless a ping or an operator changes it first; false when name is
// not declared or when no such instant is pending (new, down, paused,
// running-too-long). The engine can wake up at it to re-evaluate.
func (t *Tracker) NextDeadline(name string, now time.Time) (time.Time, bool) {
	d := t.decl.Load()
	e := d.entries[name]
	if e == nil {
		return time.Time{}, false
	}
	_, next, _ := d.evaluate(e, now)
	return next, !next.IsZero()
}

// evaluate computes e's state, next change and status at now; a pattern
// declaration's are those of the heartbeats created from it (aggregate).
func (d *declared) evaluate(e *entry, now time.Time) (State, time.Time, asserts.HeartbeatStatus) {
	e.mu.RLock()
	pattern := e.prefix != ""
	st, next := evaluate(e.spec, &e.rec, e.runs, now)
	hs := status(e.name, st, &e.rec, now)
	e.mu.RUnlock()
	if pattern {
		return d.aggregate(e, now)
	}
	return st, next, hs
}

// Ping records one ping: it validates p, makes it and the state it produces
// durable through the Store, and only then applies it. p.At must be set;
// p.ID is assigned by the store. A longer body is cut to MaxBody. Errors:
// ErrUnknown, ErrInvalidPing, or the store's (the ping was not recorded).
func (t *Tracker) Ping(ctx context.Context, p assertd.Ping) error {
	e := t.entry(p.Heartbeat)
	if e == nil {
		return fmt.Errorf("%w %q: add it under heartbeats: in a rule file", ErrUnknown, clip(p.Heartbeat, 64))
	}
	e.mu.RLock()
	pattern := e.prefix
	e.mu.RUnlock()
	if pattern != "" {
		return fmt.Errorf("%w: heartbeat %q is a pattern: ping a heartbeat whose name starts with %q (with ?create=1 to create it)", ErrInvalidPing, p.Heartbeat, pattern)
	}
	if err := normalize(&p); err != nil {
		return err
	}
	e.pingMu.Lock()
	defer e.pingMu.Unlock()
	e.mu.RLock()
	rec, runs := apply(e.rec, e.runs, p)
	e.mu.RUnlock()
	p.ID = 0
	var err error
	if rp, ok := t.store.(PingRecorder); ok {
		err = rp.RecordPing(ctx, p, rec)
	} else if err = t.store.AddPing(ctx, p); err == nil {
		err = t.store.SaveHeartbeat(ctx, rec)
	}
	if err != nil {
		return fmt.Errorf("record ping of heartbeat %q: %w", p.Heartbeat, err)
	}
	e.mu.Lock()
	e.rec, e.runs = rec, runs
	e.mu.Unlock()
	e.pings[kindIndex(p.Kind)].Add(1)
	return nil
}

// normalize validates p and bounds its body.
func normalize(p *assertd.Ping) error {
	if p.At.IsZero() {
		return fmt.Errorf("%w: no time", ErrInvalidPing)
	}
	switch p.Kind {
	case assertd.PingSuccess, assertd.PingStart, assertd.PingLog:
		p.ExitCode = 0
	case assertd.PingFail:
		if p.ExitCode == 0 {
			p.ExitCode = 1
		}
		if p.ExitCode < 1 || p.ExitCode > 255 {
			return fmt.Errorf("%w: a fail exit code must be 1 to 255", ErrInvalidPing)
		}
	case assertd.PingExit:
		if p.ExitCode < 0 || p.ExitCode > 255 {
			return fmt.Errorf("%w: exit code must be 0 to 255", ErrInvalidPing)
		}
	default:
		return fmt.Errorf("%w: kind %q is not success, start, fail, exit or log", ErrInvalidPing, clip(string(p.Kind), 32))
	}
	if p.RunID != "" {
		if err := CheckRunID(p.RunID); err != nil {
			return err
		}
	}
	if len(p.Body) > MaxBody+len(TruncatedMarker) || !utf8.ValidString(p.Body) || strings.Contains(p.Body, "\x00") {
		p.Body, _ = boundBody(p.Body, false)
	}
	p.Source = clip(strings.ToValidUTF8(p.Source, "?"), 128)
	return nil
}

// boundBody makes b valid UTF-8 without NUL bytes (what a SQL text column
// takes) and at most MaxBody bytes, marking a cut with TruncatedMarker.
func boundBody(b string, truncated bool) (string, bool) {
	b = strings.ToValidUTF8(b, "\uFFFD")
	b = strings.ReplaceAll(b, "\x00", "\uFFFD")
	if len(b) > MaxBody {
		cut := MaxBody
		for cut > 0 && !utf8.RuneStart(b[cut]) {
			cut--
		}
		b, truncated = b[:cut], true
	}
	if truncated {
		b += TruncatedMarker
	}
	return b, truncated
}

// Pause pauses name: it is paused until Resume or its next ping, and its
// runs in progress are forgotten (as Healthchecks does).
func (t *Tracker) Pause(ctx context.Context, name string) error {
	return t.update(ctx, name, func(r *assertd.HeartbeatRecord, runs *[]run) {
		r.Paused = true
		*runs = nil
		setStart(r, nil)
	})
}

// Resume ends a pause. The state is then computed from the last pings as
// usual: a heartbeat silent for longer than its deadline is down at once.
func (t *Tracker) Resume(ctx context.Context, name string) error {
	return t.update(ctx, name, func(r *assertd.HeartbeatRecord, _ *[]run) { r.Paused = false })
}

func (t *Tracker) update(ctx context.Context, name string, f func(*assertd.HeartbeatRecord, *[]run)) error {
	e := t.entry(name)
	if e == nil {
		return fmt.Errorf("%w %q: add it under heartbeats: in a rule file", ErrUnknown, clip(name, 64))
	}
	e.pingMu.Lock()
	defer e.pingMu.Unlock()
	e.mu.RLock()
	rec, runs := e.rec, slices.Clone(e.runs)
	e.mu.RUnlock()
	f(&rec, &runs)
	if err := t.store.SaveHeartbeat(ctx, rec); err != nil {
		return fmt.Errorf("save heartbeat %q: %w", name, err)
	}
	e.mu.Lock()
	e.rec, e.runs = rec, runs
	e.mu.Unlock()
	return nil
}

// clip shortens s to at most n bytes (at a character boundary) for messages.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
