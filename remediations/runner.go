package remediations

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/store"
)

// Verifier re-evaluates asserts for verify steps. The engine implements it.
type Verifier interface {
	// Verify evaluates assert now for the instance with these labels and
	// reports whether it holds, with a reason in words.
	Verify(ctx context.Context, assert string, labels assertd.Labels, now time.Time) (bool, string, error)
	// VerifyExpr evaluates assert now for the instance with these labels and
	// reports whether expression holds over its fresh values.
	VerifyExpr(ctx context.Context, assert string, labels assertd.Labels, expression string, now time.Time) (bool, string, error)
}

// Fleet tells the gates about an assert's instances. The engine implements it.
type Fleet interface {
	// Counts returns how many instances of assert are violating and how
	// many there are, only those whose label by has value (by "": all).
	Counts(assert, by, value string) (violating, total int)
	// InstancesOf returns a snapshot of the instances of assert.
	InstancesOf(assert string) []assertd.Instance
}

// Catalog gives the remediations and safety limits in force (they change
// on reload). The engine implements it.
type Catalog interface {
	Remediation(name string) *Compiled
	Safety() Safety
}

// Host is what the runner needs from the engine.
type Host interface {
	Verifier
	Fleet
	Catalog
}

// ApprovalAsker is a Host that tells people about a run waiting for their
// approval (the engine writes the request to the outbox). The runner calls
// it once the approval is requested in the store.
type ApprovalAsker interface {
	ApprovalRequested(ctx context.Context, run assertd.Run, in assertd.Instance, expires time.Time)
}

// Store is the part of store.Store the runner uses.
type Store interface {
	CreateRun(ctx context.Context, r assertd.Run) (bool, error)
	FinishRun(ctx context.Context, id string, status assertd.RunStatus, ended time.Time, outcome string) error
	SetRunStatus(ctx context.Context, id string, status assertd.RunStatus) error
	Run(ctx context.Context, id string) (assertd.Run, error)
	Runs(ctx context.Context, f store.RunFilter) ([]assertd.Run, error)
	RunStats(ctx context.Context, remediation, lockKey string, since time.Time) (store.RunStats, error)
	PutStep(ctx context.Context, s assertd.RunStep) error
	AcquireLock(ctx context.Context, key, owner string, now time.Time, ttl time.Duration) (assertd.Lock, bool, error)
	ReleaseLock(ctx context.Context, key, owner string, now time.Time) error
	Lock(ctx context.Context, key string) (assertd.Lock, error)
	RequestApproval(ctx context.Context, a assertd.Approval) error
	Approval(ctx context.Context, runID string) (assertd.Approval, error)
	Settings(ctx context.Context) ([]assertd.Setting, error)
	Audit(ctx context.Context, e assertd.AuditEntry) (int64, error)
	PutBreaker(ctx context.Context, b assertd.Breaker) error
	CloseBreaker(ctx context.Context, assert, by, reason string, at time.Time) (assertd.Breaker, error)
	Breaker(ctx context.Context, assert string) (assertd.Breaker, error)
	Breakers(ctx context.Context) ([]assertd.Breaker, error)
}

// Safety is the global limits on automation (config safety, which runtime
// settings override).
type Safety struct {
	KillSwitch    bool
	MaxConcurrent int    // runs at once; 0: DefaultMaxConcurrent
	Budget        *Limit // runs per window across all remediations; nil: none
	BlastRadius   BlastRadius
}

// BlastRadius configures the breaker that suspends automation for an assert
// when too many of its instances turn violated at once.
type BlastRadius struct {
	Disabled bool
	Share    float64       // 0: DefaultBlastShare
	Window   time.Duration // 0: DefaultBlastWindow
	By       []string      // also per value of these labels, such as zone
}

// Defaults of the safety limits and of the runner.
const (
	DefaultMaxConcurrent = 4
	DefaultBlastShare    = 0.3
	DefaultBlastWindow   = 5 * time.Minute
	DefaultGrace         = 5 * time.Second // SIGTERM, then SIGKILL after this
	maxHTTPBody          = 16 << 20        // bytes of a response read (the tail is kept)
)

// RunnerOptions configure a Runner.
type RunnerOptions struct {
	Store Store
	// Host is the engine the runner works for (required): engine.New
	// builds the runner on itself through engine.Options.NewRemediator.
	Host   Host
	Clock  Clock
	Logger *slog.Logger
	// LookupEnv reads assertd's environment (env_allow, secret_env);
	// default os.LookupEnv. ReadFile reads secret_file; default os.ReadFile.
	LookupEnv  func(string) (string, bool)
	ReadFile   func(string) ([]byte, error)
	HTTPClient *http.Client
	// Grace is how long a process may take to stop after SIGTERM before
	// its process group is killed (default DefaultGrace).
	Grace time.Duration
	// MaxOutput bounds the output kept per step (default: just under store.MaxStepOutput).
	MaxOutput int
	// Registerer takes the runner's metrics (runs and refusals); nil: not registered.
	Registerer prometheus.Registerer
	// Effects, when set, stand in for the external effects of steps
	// (assertd test): a step they answer for runs and calls nothing.
	Effects Effects
	// ApprovalPoll, when set, is how often a run waiting for an approval
	// reads it from the store, so that one given on another replica sharing
	// the store is seen (0: only ApprovalDecided wakes it).
	ApprovalPoll time.Duration
}

// Effects stand in for what steps do outside assertd.
type Effects interface {
	// Step answers for a run, http or verify step of a remediation: whether
	// it passed and what it said. ok false: do the step for real (only
	// verify steps may be left to the real thing).
	Step(remediation string, st *CompiledStep) (passed bool, detail string, ok bool)
}

// Runner decides whether a remediation may run for an instance (the gates)
// and runs it step by step, recording each step as it happens. It
// implements engine.Remediator.
type Runner struct {
	o   RunnerOptions
	log *slog.Logger
	m   *metrics

	mu       sync.Mutex
	active   int                     // runs executing steps now
	waiters  map[string]approvalWait // run ID → the run waiting for its approval
	inflight int                     // runs started and not yet reported done
	wg       sync.WaitGroup

	// breakerMu orders the reads and writes of the breakers' stored state.
	breakerMu sync.Mutex
}

// NewRunner returns a runner working for o.Host.
func NewRunner(o RunnerOptions) *Runner {
	if o.Clock == nil {
		o.Clock = realClock{}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.LookupEnv == nil {
		o.LookupEnv = os.LookupEnv
	}
	if o.ReadFile == nil {
		o.ReadFile = os.ReadFile
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{}
	}
	if o.Grace <= 0 {
		o.Grace = DefaultGrace
	}
	if o.MaxOutput <= 0 {
		o.MaxOutput = store.MaxStepOutput - 1<<10 // room for the marker line within the store's bound
	}
	return &Runner{o: o, log: o.Logger, m: newMetrics(o.Registerer), waiters: map[string]approvalWait{}}
}

func (r *Runner) getHost() Host { return r.o.Host }

// Wait waits for the runs in progress to stop (after their context ended).
func (r *Runner) Wait() { r.wg.Wait() }

// Start runs the decided remediation for the instance in the background
// under d.RunID and calls done once when it ends. The run is recorded before
// Start returns (creating it is idempotent: a run that exists is not run
// again; when it has ended, done gets its outcome). When ctx ends first
// (assertd stopping), the process is killed and the run is left running in
// the store, so that the next start marks it interrupted and escalates it
// exactly once; done is then not called.
func (r *Runner) Start(ctx context.Context, d assertd.Decision, in assertd.Instance, done func(assertd.RunResult)) {
	r.start(ctx, d, in, false, done)
}

// StartManual is Start for a run started by hand (break glass): the human
// who started it is its approval, so it does not wait for one.
func (r *Runner) StartManual(ctx context.Context, d assertd.Decision, in assertd.Instance, done func(assertd.RunResult)) {
	r.start(ctx, d, in, true, done)
}

// execRun is one run in progress.
type execRun struct {
	assertd.Run
	rem     *Compiled
	in      assertd.Instance
	data    map[string]any
	manual  bool
	red     *redactor
	log     stepLog
	seq     int
	verify  string // the last verify result, in words
	lastErr string // why the run failed, in words
}

func (r *Runner) start(ctx context.Context, d assertd.Decision, in assertd.Instance, manual bool, done func(assertd.RunResult)) {
	now := r.o.Clock.Now()
	result := func(ru *execRun, verified bool, outcome string) assertd.RunResult {
		res := assertd.RunResult{RunID: d.RunID, Shadow: d.Action == assertd.ActShadow, Verified: verified, Outcome: outcome, At: r.o.Clock.Now()}
		if ru != nil {
			res.StepLog = ru.red.redact(ru.log.String(), false)
		}
		return res
	}
	var rem *Compiled
	if h := r.getHost(); h != nil {
		rem = h.Remediation(d.Remediation)
	}
	if rem == nil || d.RunID == "" {
		done(result(nil, false, fmt.Sprintf("refused: remediation %q is not loaded (or the run has no ID); nothing ran", d.Remediation)))
		return
	}
	ru := &execRun{rem: rem, in: in, manual: manual, red: &redactor{}, Run: assertd.Run{ID: d.RunID, Remediation: rem.Name, Assert: in.Assert,
		Fingerprint: in.Fingerprint, Labels: in.Labels, DecisionKey: d.Key, Shadow: d.Action == assertd.ActShadow, Status: assertd.RunRunning, Started: now}}
	ru.data = templateData(rem, in, d.RunID)
	key, keyErr := targetKey(rem, in, ru.data)
	ru.LockKey = key
	created, err := r.o.Store.CreateRun(ctx, ru.Run)
	switch {
	case err != nil:
		done(result(nil, false, fmt.Sprintf("refused: the run could not be recorded (%v); nothing ran", err)))
		return
	case !created:
		old, err := r.o.Store.Run(ctx, d.RunID)
		if err == nil && old.Status.Final() {
			done(assertd.RunResult{RunID: old.ID, Shadow: old.Shadow, Verified: old.Status == assertd.RunSucceeded && !old.Shadow, Outcome: old.Outcome, At: old.Ended})
		} else {
			r.log.Warn("run already exists and is in progress: not started again", "run", d.RunID, "err", err)
		}
		return
	}
	if keyErr != nil {
		done(result(ru, false, r.refuse(ctx, ru, refusedTarget, "refused: "+keyErr.Error())))
		return
	}
	r.wg.Add(1)
	r.mu.Lock()
	r.inflight++
	r.mu.Unlock()
	go func() {
		defer r.wg.Done()
		defer func() {
			r.mu.Lock()
			r.inflight--
			r.mu.Unlock()
		}()
		verified, outcome, ok := r.execute(ctx, ru)
		if !ok {
			r.log.Warn("run interrupted: assertd is stopping; the next start escalates it", "run", ru.ID)
			return
		}
		done(result(ru, verified, outcome))
	}()
}

// InFlight is the number of runs started and not yet reported done.
func (r *Runner) InFlight() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.inflight
}

// finish records the run's end and returns its outcome.
func (r *Runner) finish(ctx context.Context, ru *execRun, status assertd.RunStatus, outcome string) string {
	outcome = ru.red.redact(outcome, false)
	if err := r.o.Store.FinishRun(context.WithoutCancel(ctx), ru.ID, status, r.o.Clock.Now(), outcome); err != nil {
		r.log.Error("recording the end of a run", "run", ru.ID, "err", err)
	}
	r.m.ended(ru.Remediation, status)
	ru.log.add("run %s: %s", status, outcome)
	return outcome
}

// refuse records the run's end as refused, of this kind, and returns its outcome.
func (r *Runner) refuse(ctx context.Context, ru *execRun, kind, outcome string) string {
	r.m.refusals.WithLabelValues(kind).Inc()
	return r.finish(ctx, ru, assertd.RunRefused, outcome)
}

// execute runs the run to its end: approval, lock, slot, then the steps. ok
// is false when ctx ended first.
func (r *Runner) execute(ctx context.Context, ru *execRun) (verified bool, outcome string, ok bool) {
	if ru.Shadow {
		return false, r.finish(ctx, ru, assertd.RunSucceeded, r.shadow(ctx, ru)), true
	}
	if kind, err := r.prerender(ru); err != nil {
		return false, r.refuse(ctx, ru, kind, "refused before any step ran: "+err.Error()), true
	}
	if ru.rem.ApprovalRequired && !ru.manual {
		approved, why := r.awaitApproval(ctx, ru)
		if ctx.Err() != nil {
			return false, "", false
		}
		if !approved {
			return false, r.refuse(ctx, ru, refusedApproval, why), true
		}
	}
	now := r.o.Clock.Now()
	l, got, err := r.o.Store.AcquireLock(ctx, ru.LockKey, ru.ID, now, lockTTL(ru.rem))
	switch {
	case err != nil:
		return false, r.refuse(ctx, ru, refusedLock, fmt.Sprintf("refused: lock %s could not be taken: %v", ru.LockKey, err)), true
	case !got:
		return false, r.refuse(ctx, ru, refusedLock, fmt.Sprintf("refused: lock %s is held by run %s until %s", ru.LockKey, l.Owner, l.Expires.Format(time.RFC3339))), true
	}
	defer func() {
		if err := r.o.Store.ReleaseLock(context.WithoutCancel(ctx), ru.LockKey, ru.ID, r.o.Clock.Now()); err != nil {
			r.log.Warn("releasing a run's lock (it expires on its own)", "lock", ru.LockKey, "err", err)
		}
	}()
	if !ru.manual {
		if why := r.takeSlot(ctx); why != "" {
			return false, r.refuse(ctx, ru, refusedConcurrency, "refused: "+why), true
		}
	} else {
		r.mu.Lock()
		r.active++
		r.mu.Unlock()
	}
	defer func() {
		r.mu.Lock()
		r.active--
		r.mu.Unlock()
	}()

	i, last := 0, ""
	for i >= 0 {
		st := &ru.rem.Steps[i]
		last = st.Name
		passed := false
		for attempt := 0; attempt <= st.Retries && !passed; attempt++ {
			if attempt > 0 {
				wait := st.Backoff << (attempt - 1)
				ru.log.add("%s: retry %d of %d in %s", st.Name, attempt, st.Retries, wait)
				if sleep(ctx, r.o.Clock, wait) != nil {
					return false, "", false
				}
			}
			passed = r.attempt(ctx, ru, st, attempt+1)
			if ctx.Err() != nil {
				return false, "", false
			}
		}
		if passed {
			i = st.OnSuccess
		} else {
			i = st.OnFailure
		}
	}
	if i == Done {
		return true, r.finish(ctx, ru, assertd.RunSucceeded, fmt.Sprintf("verified: %s", ru.verify)), true
	}
	return false, r.finish(ctx, ru, assertd.RunFailed, fmt.Sprintf("step %s failed: %s", last, ru.lastErr)), true
}

// takeSlot takes one of the concurrent run slots, or says why not.
func (r *Runner) takeSlot(ctx context.Context) string {
	lim, err := r.limits(ctx)
	if err != nil {
		return err.Error()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.active >= lim.maxConcurrent {
		return fmt.Sprintf("%d runs are in progress, the most allowed at once (%s)", r.active, assertd.SettingMaxConcurrentRuns)
	}
	r.active++
	return ""
}

// lockTTL bounds how long a run can hold its lock: every step's attempts,
// backoffs and waits (the graph has no cycle), plus an approval and margin.
func lockTTL(rem *Compiled) time.Duration {
	d := time.Minute
	for _, s := range rem.Steps {
		per := s.Timeout + s.Wait.Std()
		d += per * time.Duration(s.Retries+1)
		for k := range s.Retries {
			d += s.Backoff << k
		}
	}
	return d
}

// templateData is what lock and step templates see.
func templateData(rem *Compiled, in assertd.Instance, runID string) map[string]any {
	labels := map[string]string(in.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	values := in.Values
	if values == nil {
		values = map[string]float64{}
	}
	return map[string]any{"Assert": in.Assert, "Remediation": rem.Name, "Labels": labels, "Values": values, "RunID": runID}
}

// targetKey is what one run at a time may touch: the rendered lock, or
// the instance itself when the remediation sets no lock. max_runs and
// cooldown count per target key.
func targetKey(rem *Compiled, in assertd.Instance, data map[string]any) (string, error) {
	if rem.Lock == nil {
		return "instance/" + in.Assert + "/" + in.Fingerprint, nil
	}
	var b strings.Builder
	if err := rem.Lock.Execute(&b, data); err != nil {
		return "", fmt.Errorf("lock template: %w", err)
	}
	k := b.String()
	if strings.TrimSpace(k) == "" || strings.ContainsRune(k, 0) {
		return "", errors.New("the lock key renders empty (or holds NUL): the target cannot be named, so nothing runs")
	}
	return "lock/" + k, nil
}
