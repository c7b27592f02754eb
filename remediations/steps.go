package remediations

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"text/template"
	"time"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/store"
)

// stepResult is how one attempt of a step ended.
type stepResult struct {
	outcome assertd.StepOutcome
	exit    int
	output  string // raw; redacted when recorded
	cut     bool   // output was cut to its tail
	err     string // why it failed, in words
}

// attempt runs one attempt of a step, recording its start and end, and
// reports whether it passed.
func (r *Runner) attempt(ctx context.Context, ru *execRun, st *CompiledStep, n int) bool {
	rec := assertd.RunStep{RunID: ru.ID, Seq: ru.seq, Name: st.Name, Attempt: n, Started: r.o.Clock.Now(), Outcome: assertd.StepRunning}
	ru.seq++
	if err := r.putStep(ctx, rec); errors.Is(err, store.ErrFenced) {
		// Another replica owns the assert now: nothing runs that is not recorded.
		r.log.Error("the step is not run: its start could not be recorded", "run", ru.ID, "step", st.Name, "err", err)
		return false
	}
	var res stepResult
	faked := false
	if r.o.Effects != nil && st.Kind != "wait" {
		if passed, detail, ok := r.o.Effects.Step(ru.rem.Name, st); ok {
			faked = true
			res = stepResult{outcome: assertd.StepOK, output: detail}
			if !passed {
				res = stepResult{outcome: assertd.StepFailed, exit: 1, err: detail}
			}
		}
	}
	switch {
	case faked:
	case st.Kind == "run":
		res = r.runStep(ctx, ru, st)
	case st.Kind == "http":
		res = r.httpStep(ctx, ru, st)
	case st.Kind == "wait":
		res = stepResult{outcome: assertd.StepOK}
		if err := sleep(ctx, r.o.Clock, st.Wait.Std()); err != nil {
			res = stepResult{outcome: assertd.StepFailed, err: "interrupted: assertd is stopping"}
		}
	case st.Kind == "verify":
		res = r.verifyStep(ctx, ru, st)
	default:
		res = stepResult{outcome: assertd.StepFailed, err: fmt.Sprintf("step kind %q cannot run", st.Kind)}
	}
	if ctx.Err() != nil && res.outcome != assertd.StepOK {
		res.err = "interrupted: assertd is stopping (" + res.err + ")"
	}
	rec.Ended, rec.Outcome, rec.ExitCode = r.o.Clock.Now(), res.outcome, res.exit
	rec.Output = ru.red.redact(res.output, res.cut)
	rec.Error = ru.red.redact(res.err, false)
	_ = r.putStep(ctx, rec) // logged; the step already ran

	line := fmt.Sprintf("%s (attempt %d): %s", st.Name, n, res.outcome)
	if st.Kind == "run" && res.outcome != assertd.StepRunning {
		line += fmt.Sprintf(", exit %d", res.exit)
	}
	if rec.Error != "" {
		line += ": " + rec.Error
	}
	ru.log.add("%s", line)
	if out := strings.TrimSpace(rec.Output); out != "" {
		ru.log.add("  | %s", strings.ReplaceAll(lastLines(out, 10), "\n", "\n  | "))
	}
	if res.outcome != assertd.StepOK {
		ru.lastErr = rec.Error
		if ru.lastErr == "" {
			ru.lastErr = string(res.outcome)
		}
	}
	return res.outcome == assertd.StepOK
}

func (r *Runner) putStep(ctx context.Context, s assertd.RunStep) error {
	err := r.o.Store.PutStep(context.WithoutCancel(ctx), s)
	if err != nil {
		r.log.Error("recording a step", "run", s.RunID, "step", s.Name, "err", err)
	}
	return err
}

// render executes a step template; output that is empty or holds NUL is
// refused, so that nothing runs with a missing label or a smuggled byte.
func render(what string, t *template.Template, data map[string]any, allowEmpty bool) (string, error) {
	if t == nil {
		return "", nil
	}
	var b strings.Builder
	if err := t.Execute(&b, data); err != nil {
		if msg, ok := valueRefusal(err); ok {
			return "", errors.New(msg)
		}
		return "", fmt.Errorf("%s: %w", what, err)
	}
	s := b.String()
	switch {
	case strings.ContainsRune(s, 0):
		return "", fmt.Errorf("%s renders a NUL byte: nothing runs", what)
	case s == "" && !allowEmpty:
		return "", fmt.Errorf("%s renders empty (a missing label or value?): nothing runs", what)
	}
	return s, nil
}

func renderValue(what string, v Value, data map[string]any) (string, error) {
	t, err := assertd.ParseTemplate(what, v.Value, TemplateFields)
	if err != nil {
		return "", fmt.Errorf("%s: %w", what, err)
	}
	return render(what, t, data, true)
}

// secret resolves a secret reference; its value is added to the redactor.
func (r *Runner) secret(what string, v Value, red *redactor) (string, error) {
	var s string
	switch {
	case v.SecretEnv != "":
		val, ok := r.o.LookupEnv(v.SecretEnv)
		if !ok || val == "" {
			return "", fmt.Errorf("%s: secret_env %s is empty or unset: nothing runs", what, v.SecretEnv)
		}
		s = val
	default:
		b, err := r.o.ReadFile(v.SecretFile)
		if err != nil {
			return "", fmt.Errorf("%s: secret_file %s cannot be read: %w", what, v.SecretFile, errors.Unwrap(err))
		}
		s = strings.TrimRight(string(b), "\r\n")
		if s == "" {
			return "", fmt.Errorf("%s: secret_file %s is empty: nothing runs", what, v.SecretFile)
		}
	}
	red.add(s)
	return v.Prefix + s, nil
}

// argvEnv renders a run step's argv and environment.
func (r *Runner) argvEnv(ru *execRun, st *CompiledStep, resolveSecrets bool) (argv, env []string, err error) {
	for i, t := range st.Run {
		what := fmt.Sprintf("run[%d]", i)
		a, err := render(what, t, ru.data, false)
		if err != nil {
			return nil, nil, err
		}
		if i > 0 && i < len(st.ArgLit) && !st.ArgLit[i] && strings.HasPrefix(a, "-") {
			return nil, nil, fmt.Errorf("%s renders %s, which starts with \"-\" and would be read as an option: nothing runs", what, shortQuote(a))
		}
		argv = append(argv, a)
	}
	env = []string{} // never nil: a nil Env would pass assertd's whole environment
	for _, name := range st.EnvAllow {
		if v, ok := r.o.LookupEnv(name); ok {
			env = append(env, name+"="+v)
		}
	}
	names := make([]string, 0, len(st.Env))
	for n := range st.Env {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		v := st.Env[n]
		var val string
		switch {
		case v.IsSecret() && !resolveSecrets:
			val = "<secret>"
		case v.IsSecret():
			val, err = r.secret("env "+n, v, ru.red)
		default:
			val, err = renderValue("env "+n, v, ru.data)
		}
		if err != nil {
			return nil, nil, err
		}
		if strings.ContainsRune(val, 0) {
			return nil, nil, fmt.Errorf("env %s holds a NUL byte: nothing runs", n)
		}
		env = append(env, n+"="+val)
	}
	return argv, env, nil
}

// runStep runs a program (never a shell) in its own process group with a
// timeout; on timeout the group gets SIGTERM, then SIGKILL after the grace.
func (r *Runner) runStep(ctx context.Context, ru *execRun, st *CompiledStep) stepResult {
	argv, env, err := r.argvEnv(ru, st, true)
	if err != nil {
		return stepResult{outcome: assertd.StepFailed, exit: -1, err: err.Error()}
	}
	out := newTail(r.o.MaxOutput)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env, cmd.Dir = env, st.Dir
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// After the program exits, children that keep its output open are
	// waited for at most this long.
	cmd.WaitDelay = r.o.Grace
	if err := cmd.Start(); err != nil {
		return stepResult{outcome: assertd.StepFailed, exit: -1, err: fmt.Sprintf("cannot start %s: %v", argv[0], err)}
	}
	pgid := cmd.Process.Pid
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	timer := time.NewTimer(st.Timeout)
	defer timer.Stop()
	res := stepResult{outcome: assertd.StepOK}
	var werr error
	select {
	case werr = <-exited:
	case <-timer.C:
		res.outcome, res.err = assertd.StepTimeout, fmt.Sprintf("timed out after %s: process group killed", st.Timeout)
		werr = r.killGroup(pgid, exited)
	case <-ctx.Done():
		res.outcome, res.err = assertd.StepFailed, "interrupted: process group killed"
		werr = r.killGroup(pgid, exited)
	}
	res.output, res.cut = out.String(), out.Cut()
	res.exit = -1
	if cmd.ProcessState != nil {
		res.exit = cmd.ProcessState.ExitCode()
	}
	if res.outcome == assertd.StepOK {
		var ee *exec.ExitError
		switch {
		case res.exit != 0:
			res.outcome, res.err = assertd.StepFailed, fmt.Sprintf("%s exited with %s", argv[0], exitText(cmd))
		case werr != nil && !errors.As(werr, &ee) && !errors.Is(werr, exec.ErrWaitDelay):
			res.outcome, res.err = assertd.StepFailed, fmt.Sprintf("waiting for %s: %v", argv[0], werr)
		}
	}
	return res
}

func exitText(cmd *exec.Cmd) string {
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return "signal " + ws.Signal().String()
	}
	return fmt.Sprintf("code %d", cmd.ProcessState.ExitCode())
}

// killGroup sends SIGTERM to the process group, SIGKILL after the grace,
// and waits for the program to end.
func (r *Runner) killGroup(pgid int, exited <-chan error) error {
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	grace := time.NewTimer(r.o.Grace)
	defer grace.Stop()
	select {
	case err := <-exited:
		_ = syscall.Kill(-pgid, syscall.SIGKILL) // stragglers of the group
		return err
	case <-grace.C:
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		return <-exited
	}
}

// httpStep calls a URL and checks the status.
func (r *Runner) httpStep(ctx context.Context, ru *execRun, st *CompiledStep) stepResult {
	fail := func(err error) stepResult {
		return stepResult{outcome: assertd.StepFailed, err: err.Error()}
	}
	h := st.HTTP
	method := h.Method
	if method == "" {
		method = http.MethodPost
	}
	u, err := render("url", st.URL, ru.data, false)
	if err != nil {
		return fail(err)
	}
	if err := checkURL(st, u); err != nil {
		return fail(err)
	}
	body, err := renderBody(st, ru.data)
	if err != nil {
		return fail(err)
	}
	hdr := http.Header{}
	for name, v := range h.Headers {
		var val string
		if v.IsSecret() {
			val, err = r.secret("header "+name, v, ru.red)
		} else {
			val, err = renderValue("header "+name, v, ru.data)
		}
		if err != nil {
			return fail(err)
		}
		if strings.ContainsAny(val, "\r\n\x00") {
			return fail(fmt.Errorf("header %s holds a line break or NUL: nothing is sent", name))
		}
		hdr.Set(name, val)
	}
	cctx, cancel := context.WithTimeout(ctx, st.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(cctx, method, u, strings.NewReader(body))
	if err != nil {
		return fail(err)
	}
	req.Header = hdr
	resp, err := r.o.HTTPClient.Do(req)
	if err != nil {
		if cctx.Err() == context.DeadlineExceeded {
			return stepResult{outcome: assertd.StepTimeout, err: fmt.Sprintf("%s %s: no answer within %s", method, u, st.Timeout)}
		}
		return fail(fmt.Errorf("%s %s: %w", method, u, errors.Unwrap(err)))
	}
	defer resp.Body.Close()
	out := newTail(r.o.MaxOutput)
	fmt.Fprintf(out, "HTTP %s\n", resp.Status)
	_, rerr := io.Copy(out, io.LimitReader(resp.Body, maxHTTPBody))
	res := stepResult{outcome: assertd.StepOK, exit: resp.StatusCode, output: out.String(), cut: out.Cut()}
	want := h.ExpectStatus
	if len(want) == 0 && (resp.StatusCode < 200 || resp.StatusCode > 299) || len(want) > 0 && !slices.Contains(want, resp.StatusCode) {
		res.outcome = assertd.StepFailed
		res.err = fmt.Sprintf("%s %s answered %d, expected %s", method, u, resp.StatusCode, expected(want))
	} else if rerr != nil && cctx.Err() != nil {
		res.outcome, res.err = assertd.StepTimeout, fmt.Sprintf("reading the answer: %v", rerr)
	}
	return res
}

// checkURL checks a rendered url: it parses, and its scheme and host are
// the literal ones of the template.
func checkURL(st *CompiledStep, u string) error {
	pu, err := url.Parse(u)
	switch {
	case err != nil:
		return fmt.Errorf("url renders %q, which does not parse: nothing is sent", u)
	case pu.Scheme != "http" && pu.Scheme != "https", pu.Host == "", pu.User != nil:
		return fmt.Errorf("url renders %q: it must be http(s) with a host and no credentials; nothing is sent", u)
	case st.URLBase != nil && (pu.Scheme != st.URLBase.Scheme || pu.Host != st.URLBase.Host):
		return fmt.Errorf("url renders %q, whose scheme and host are not the url's own %s://%s: nothing is sent", u, st.URLBase.Scheme, st.URLBase.Host)
	}
	for _, seg := range strings.Split(pu.EscapedPath(), "/") {
		if seg == "." || seg == ".." {
			return fmt.Errorf("url renders %q, whose path has a dot segment (%s) that would move up the path: nothing is sent", u, seg)
		}
	}
	return nil
}

// renderBody renders a request body; a JSON body must render valid JSON.
func renderBody(st *CompiledStep, data map[string]any) (string, error) {
	body, err := render("body", st.Body, data, true)
	if err != nil {
		return "", err
	}
	if st.BodyJSON && body != "" && !json.Valid([]byte(body)) {
		return "", fmt.Errorf("body renders %s, which is not valid JSON: nothing is sent", shortQuote(body))
	}
	return body, nil
}

// prerender renders every step's argv, url and body (not the secrets)
// before the first step runs, and checks the allow patterns: a value that
// is refused stops the run before anything is done, not halfway through.
// It returns the kind of refusal with the reason.
func (r *Runner) prerender(ru *execRun) (string, error) {
	if why := ru.rem.allowed(ru.in.Labels); why != "" {
		return refusedAllow, errors.New(why)
	}
	for i := range ru.rem.Steps {
		st := &ru.rem.Steps[i]
		var err error
		switch st.Kind {
		case "run":
			_, _, err = r.argvEnv(ru, st, false)
		case "http":
			var u string
			if u, err = render("url", st.URL, ru.data, false); err == nil {
				if err = checkURL(st, u); err == nil {
					_, err = renderBody(st, ru.data)
				}
			}
		}
		if err != nil {
			return refusedValue, fmt.Errorf("step %s: %w", st.Name, err)
		}
	}
	return "", nil
}

func expected(want []int) string {
	if len(want) == 0 {
		return "a 2xx status"
	}
	return strings.Trim(fmt.Sprint(want), "[]")
}

// verifyStep re-evaluates the assert for this instance (or the expression
// over the triggering assert's fresh values): it passes only if it holds.
func (r *Runner) verifyStep(ctx context.Context, ru *execRun, st *CompiledStep) stepResult {
	h := r.getHost()
	if h == nil {
		return stepResult{outcome: assertd.StepFailed, err: "no engine to verify against"}
	}
	cctx, cancel := context.WithTimeout(ctx, st.Timeout)
	defer cancel()
	now := r.o.Clock.Now()
	var ok bool
	var why string
	var err error
	if st.Verify.Assert != "" {
		ok, why, err = h.Verify(cctx, st.Verify.Assert, ru.in.Labels, now)
	} else {
		ok, why, err = h.VerifyExpr(cctx, ru.in.Assert, ru.in.Labels, st.Verify.Expr, now)
	}
	switch {
	case err != nil:
		ru.verify = "cannot verify: " + err.Error()
		return stepResult{outcome: assertd.StepFailed, err: ru.verify}
	case !ok:
		ru.verify = why
		return stepResult{outcome: assertd.StepFailed, output: why, err: "the assert still fails: " + why}
	}
	ru.verify = why
	return stepResult{outcome: assertd.StepOK, output: why}
}

// shadow records the run a remediation would make, along its success path,
// and makes no external call: no process, no request, no query.
func (r *Runner) shadow(ctx context.Context, ru *execRun) string {
	var path []string
	for i := 0; i >= 0; {
		st := &ru.rem.Steps[i]
		now := r.o.Clock.Now()
		rec := assertd.RunStep{RunID: ru.ID, Seq: ru.seq, Name: st.Name, Attempt: 1, Started: now, Ended: now, Outcome: assertd.StepSkipped}
		ru.seq++
		switch st.Kind {
		case "run":
			argv, env, err := r.argvEnv(ru, st, false)
			if err != nil {
				rec.Error = "would fail before running: " + err.Error()
			} else {
				rec.Output = fmt.Sprintf("would run %q with environment %q in %q, timeout %s", argv, env, st.Dir, st.Timeout)
			}
		case "http":
			u, err := render("url", st.URL, ru.data, false)
			if err == nil {
				err = checkURL(st, u)
			}
			if err == nil {
				_, err = renderBody(st, ru.data)
			}
			if err != nil {
				rec.Error = "would fail before sending: " + err.Error()
			} else {
				rec.Output = fmt.Sprintf("would send %s %s", orDefault(st.HTTP.Method, http.MethodPost), u)
			}
		case "wait":
			rec.Output = "would wait " + st.Wait.String()
		case "verify":
			rec.Output = "would verify " + orDefault(st.Verify.Assert, st.Verify.Expr)
		}
		_ = r.putStep(ctx, rec) // logged
		ru.log.add("%s: %s", st.Name, orDefault(rec.Output, rec.Error))
		path = append(path, st.Name)
		i = st.OnSuccess
	}
	return fmt.Sprintf("shadow: would have run %s; nothing was done", strings.Join(path, " → "))
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}
