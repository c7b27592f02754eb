package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/web"
)

// The operator commands talk to a running assertd through its JSON API:
// --url (or $ASSERTD_URL) and a token from $ASSERTD_TOKEN or --token-file
// (never a flag value, which would show in ps and shell history).

type apiFlags struct {
	URL       string `env:"ASSERTD_URL" placeholder:"URL" help:"assertd's address, such as http://127.0.0.1:8080 ($ASSERTD_URL)."`
	TokenFile string `placeholder:"FILE" help:"File holding the API token (default: $ASSERTD_TOKEN)."`
}

type client struct {
	base, token, tokenErr string
	http                  *http.Client
}

func (f apiFlags) client() *client {
	c := &client{base: strings.TrimSuffix(f.URL, "/"), http: &http.Client{Timeout: 30 * time.Second}}
	if c.base == "" {
		c.base = "http://127.0.0.1:8080"
	}
	c.token = os.Getenv("ASSERTD_TOKEN")
	if f.TokenFile != "" {
		b, err := os.ReadFile(f.TokenFile)
		if err != nil {
			c.tokenErr = fmt.Sprintf("--token-file: %v", err)
		}
		c.token = strings.TrimSpace(string(b))
	}
	return c
}

// call sends a request and decodes the answer; an error answer becomes an
// error with the server's message (and field).
func (c *client) call(ctx context.Context, method, path string, in, out any) error {
	if c.tokenErr != "" {
		return fmt.Errorf("%s", c.tokenErr)
	}
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return err
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, c.base+path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		var e struct{ Error, Field string }
		if json.Unmarshal(b, &e) != nil || e.Error == "" {
			e.Error = strings.TrimSpace(string(b))
		}
		hint := ""
		switch resp.StatusCode {
		case http.StatusUnauthorized:
			hint = " (set $ASSERTD_TOKEN or --token-file)"
		case http.StatusForbidden:
			hint = " (this needs an admin token)"
		}
		return fmt.Errorf("%s (HTTP %d)%s", e.Error, resp.StatusCode, hint)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("%s %s: %w", method, path, err)
		}
	}
	return nil
}

// fail prints a command's error and exits 1.
func fail(e *env, cmd string, err error) error {
	fmt.Fprintf(e.stderr, "assertd %s: %v\n", cmd, err)
	return exitCode(1)
}

type silenceCmd struct {
	Add    silenceAddCmd    `cmd:"" help:"Silence the instances matching label matchers."`
	List   silenceListCmd   `cmd:"" help:"List silences."`
	Expire silenceExpireCmd `cmd:"" help:"End a silence now."`
}

type silenceAddCmd struct {
	Match   string `required:"" placeholder:"MATCHERS" help:"Label matchers, such as '{instance=\"db1\", env=~\"prod|staging\"}'."`
	For     string `default:"2h" help:"How long (or each window's length with --cron)."`
	Cron    string `help:"Recurring window start, such as 'CRON_TZ=Europe/Berlin 0 2 * * SUN'."`
	Comment string `required:"" help:"Why, for the next person on call."`
	apiFlags
}

func (c *silenceAddCmd) Run(e *env) error {
	if _, err := web.ParseMatchers(c.Match); err != nil {
		return fail(e, "silence add", fmt.Errorf("--match: %w", err))
	}
	var si struct{ ID string }
	err := c.client().call(e.ctx, "POST", "/api/v1/silences", map[string]any{"matchers": c.Match, "duration": c.For, "cron": c.Cron, "comment": c.Comment}, &si)
	if err != nil {
		return fail(e, "silence add", err)
	}
	fmt.Fprintln(e.stdout, si.ID)
	return nil
}

type silenceListCmd struct {
	Expired bool `help:"Include ended silences."`
	apiFlags
}

func (c *silenceListCmd) Run(e *env) error {
	var r struct {
		Silences []struct {
			assertd.Silence
			Active bool
			Match  string
		}
	}
	path := "/api/v1/silences"
	if c.Expired {
		path += "?expired=true"
	}
	if err := c.client().call(e.ctx, "GET", path, nil, &r); err != nil {
		return fail(e, "silence list", err)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tACTIVE\tMATCHERS\tEND\tBY\tCOMMENT")
	for _, s := range r.Silences {
		end := "never"
		if !s.End.IsZero() {
			end = s.End.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%v\t%s\t%s\t%s\t%s\n", s.ID, s.Active, s.Match, end, s.Author, truncate(s.Comment, 60))
	}
	return tw.Flush()
}

type silenceExpireCmd struct {
	ID string `arg:"" help:"Silence ID."`
	apiFlags
}

func (c *silenceExpireCmd) Run(e *env) error {
	if err := c.client().call(e.ctx, "POST", "/api/v1/silences/"+url.PathEscape(c.ID)+"/expire", nil, nil); err != nil {
		return fail(e, "silence expire", err)
	}
	fmt.Fprintf(e.stdout, "silence %s expired\n", c.ID)
	return nil
}

type remediateCmd struct {
	Name     string `arg:"" help:"The remediation to run."`
	Instance string `required:"" placeholder:"LABELS" help:"The instance's labels, such as '{instance=\"db3\", cluster=\"reports\"}'."`
	Assert   string `help:"The assert the instance belongs to (default: the one assert that names the remediation)."`
	Reason   string `required:"" help:"Why you break glass: recorded in the audit trail."`
	DryRun   bool   `help:"Record what would run; call nothing."`
	apiFlags
}

func (c *remediateCmd) Run(e *env) error {
	ls, err := web.ParseLabels(c.Instance)
	if err != nil {
		return fail(e, "remediate", fmt.Errorf("--instance: %w", err))
	}
	var run assertd.Run
	err = c.client().call(e.ctx, "POST", "/api/v1/break-glass", map[string]any{"remediation": c.Name, "assert": c.Assert, "labels": ls,
		"reason": c.Reason, "dry_run": c.DryRun}, &run)
	if err != nil {
		return fail(e, "remediate", err)
	}
	fmt.Fprintf(e.stdout, "run %s: %s %s\n", run.ID, run.Status, run.Outcome)
	return nil
}

type approveCmd struct {
	RunID   string `arg:"" name:"run" help:"The run waiting for approval."`
	Refuse  bool   `help:"Refuse instead of approving."`
	Comment string `help:"A comment for the record."`
	apiFlags
}

func (c *approveCmd) Run(e *env) error {
	err := c.client().call(e.ctx, "POST", "/api/v1/approvals/"+url.PathEscape(c.RunID), map[string]any{"approved": !c.Refuse, "comment": c.Comment}, nil)
	if err != nil {
		return fail(e, "approve", err)
	}
	verb := "approved"
	if c.Refuse {
		verb = "refused"
	}
	fmt.Fprintf(e.stdout, "run %s %s\n", c.RunID, verb)
	return nil
}

type ackCmd struct {
	Assert   string `arg:"" help:"The assert."`
	Instance string `placeholder:"MATCHERS" help:"Matchers that pick exactly one of its instances, such as '{instance=\"db3\"}' (default: its only instance)."`
	Comment  string `help:"A comment for the record."`
	apiFlags
}

func (c *ackCmd) Run(e *env) error {
	cl := c.client()
	q := url.Values{"assert": {c.Assert}}
	if c.Instance != "" {
		if _, err := web.ParseMatchers(c.Instance); err != nil {
			return fail(e, "ack", fmt.Errorf("--instance: %w", err))
		}
		q.Set("match", c.Instance)
	}
	var r struct{ Instances []assertd.Instance }
	if err := cl.call(e.ctx, "GET", "/api/v1/instances?"+q.Encode(), nil, &r); err != nil {
		return fail(e, "ack", err)
	}
	if len(r.Instances) != 1 {
		var names []string
		for _, in := range r.Instances {
			names = append(names, in.Labels.String())
		}
		return fail(e, "ack", fmt.Errorf("%d instances of %s match; pick one with --instance: %s", len(r.Instances), c.Assert, strings.Join(names, " ")))
	}
	in := r.Instances[0]
	path := "/api/v1/instances/" + url.PathEscape(in.Assert) + "/" + url.PathEscape(in.Fingerprint) + "/ack"
	if err := cl.call(e.ctx, "POST", path, map[string]any{"comment": c.Comment}, nil); err != nil {
		return fail(e, "ack", err)
	}
	fmt.Fprintf(e.stdout, "acknowledged %s %s\n", in.Assert, in.Labels)
	return nil
}

// killSwitchCmd is pause (on) or resume (off).
type killSwitchCmd struct {
	Reason string `required:"" help:"Why: recorded in the audit trail."`
	apiFlags
}

type pauseCmd struct{ killSwitchCmd }
type resumeCmd struct{ killSwitchCmd }

func (c *pauseCmd) Run(e *env) error  { return c.set(e, "pause", "on") }
func (c *resumeCmd) Run(e *env) error { return c.set(e, "resume", "off") }

func (c *killSwitchCmd) set(e *env, cmd, value string) error {
	cl := c.client()
	err := cl.call(e.ctx, "PUT", "/api/v1/settings/"+assertd.SettingKillSwitch, map[string]string{"value": value, "reason": c.Reason}, nil)
	if err != nil {
		return fail(e, cmd, err)
	}
	if value == "on" {
		fmt.Fprintln(e.stdout, "automation paused: the kill switch is on; violations are paged, nothing is remediated (assertd resume to undo)")
		return nil
	}
	fmt.Fprintln(e.stdout, "kill switch off: automation acts again where its other limits allow it.")
	fmt.Fprintln(e.stdout, "This does not close a blast-radius breaker, nor lift max_runs, cooldowns, the run budget or silences.")
	var r struct{ Breakers []assertd.Breaker }
	if err := cl.call(e.ctx, "GET", "/api/v1/breakers", nil, &r); err != nil {
		fmt.Fprintf(e.stdout, "(the breakers could not be read: %v)\n", err)
		return nil
	}
	for _, b := range r.Breakers {
		if b.Open {
			fmt.Fprintf(e.stdout, "blast-radius breaker still open for %s (%d of %d violating): assertd breaker close %s --reason …\n",
				b.Assert, b.ViolatingNow, b.InstancesNow, b.Assert)
		}
	}
	return nil
}

type breakerCmd struct {
	List  breakerListCmd  `cmd:"" help:"List the blast-radius breakers: open ones with why, closed ones with who closed them."`
	Close breakerCloseCmd `cmd:"" help:"Close an assert's open breaker by hand: its next violation is remediated (audited)."`
}

type breakerListCmd struct {
	apiFlags
}

func (c *breakerListCmd) Run(e *env) error {
	var r struct{ Breakers []assertd.Breaker }
	if err := c.client().call(e.ctx, "GET", "/api/v1/breakers", nil, &r); err != nil {
		return fail(e, "breaker list", err)
	}
	if len(r.Breakers) == 0 {
		fmt.Fprintln(e.stdout, "no blast-radius breaker has tripped")
		return nil
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ASSERT\tSTATE\tVIOLATING NOW\tSINCE\tBY\tWHY")
	for _, b := range r.Breakers {
		state, since, by, why := "open", b.OpenedAt, "", b.Reason
		if !b.Open {
			state, since, by, why = "closed", b.ClosedAt, b.ClosedBy, b.CloseReason
			if by == "" {
				by = "assertd"
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%d of %d\t%s\t%s\t%s\n", b.Assert, state, b.ViolatingNow, b.InstancesNow, since.UTC().Format(time.RFC3339), by, truncate(why, 160))
	}
	return tw.Flush()
}

type breakerCloseCmd struct {
	Assert string `arg:"" help:"The assert whose breaker to close."`
	Reason string `required:"" help:"Why automation may act again: recorded in the audit trail."`
	apiFlags
}

func (c *breakerCloseCmd) Run(e *env) error {
	var b assertd.Breaker
	if err := c.client().call(e.ctx, "POST", "/api/v1/breaker/close", map[string]string{"assert": c.Assert, "reason": c.Reason}, &b); err != nil {
		return fail(e, "breaker close", err)
	}
	fmt.Fprintf(e.stdout, "blast-radius breaker of %s closed by %s: its next violation is remediated (the kill switch and the other limits still apply)\n", b.Assert, b.ClosedBy)
	return nil
}

type lifecycleCmd struct {
	Set  lifecycleSetCmd  `cmd:"" help:"Set a target's lifecycle state (such as upgrading: violations are recorded, not acted on, for a while), or remove it with --state ''."`
	List lifecycleListCmd `cmd:"" help:"List the lifecycle states set for targets."`
}

type lifecycleSetCmd struct {
	Target string `required:"" placeholder:"LABELS" help:"The target's labels, such as '{instance=\"db3\"}': every instance carrying them."`
	State  string `required:"" help:"installing, available, uncertain, unavailable, retiring, retired, archived, terminated, restart, upgrading, or '' to remove."`
	Reason string `required:"" help:"Why: recorded in the audit trail."`
	apiFlags
}

func (c *lifecycleSetCmd) Run(e *env) error {
	ls, err := web.ParseLabels(c.Target)
	if err != nil {
		return fail(e, "lifecycle set", fmt.Errorf("--target: %w", err))
	}
	if err := c.client().call(e.ctx, "PUT", "/api/v1/lifecycle", map[string]any{"target": ls, "state": c.State, "reason": c.Reason}, nil); err != nil {
		return fail(e, "lifecycle set", err)
	}
	if c.State == "" {
		fmt.Fprintf(e.stdout, "lifecycle of %s removed\n", ls)
	} else {
		fmt.Fprintf(e.stdout, "lifecycle of %s: %s\n", ls, c.State)
	}
	return nil
}

type lifecycleListCmd struct {
	apiFlags
}

func (c *lifecycleListCmd) Run(e *env) error {
	var r struct{ Lifecycles []assertd.LifecycleOverride }
	if err := c.client().call(e.ctx, "GET", "/api/v1/lifecycle", nil, &r); err != nil {
		return fail(e, "lifecycle list", err)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TARGET\tSTATE\tSINCE\tBY\tREASON")
	for _, o := range r.Lifecycles {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", o.Target, o.State, o.Updated.UTC().Format(time.RFC3339), o.By, truncate(o.Reason, 80))
	}
	return tw.Flush()
}

// operatorCmds are embedded in the command line (main.go).
type operatorCmds struct {
	Silence   silenceCmd   `cmd:"" help:"Add, list or expire silences (through the API)."`
	Remediate remediateCmd `cmd:"" help:"Break glass: run a remediation by hand for one instance, with a reason (through the API)."`
	Approve   approveCmd   `cmd:"" help:"Approve (or --refuse) a run waiting for approval (through the API)."`
	Ack       ackCmd       `cmd:"" help:"Acknowledge an instance's page: escalation stops (through the API)."`
	Pause     pauseCmd     `cmd:"" help:"Kill switch on: stop all automated actions (through the API)."`
	Resume    resumeCmd    `cmd:"" help:"Kill switch off: automation acts again within its other limits; an open blast-radius breaker stays open (assertd breaker close) (through the API)."`
	Breaker   breakerCmd   `cmd:"" help:"List the blast-radius breakers, or close one by hand (through the API)."`
	Lifecycle lifecycleCmd `cmd:"" help:"Set or list the lifecycle states of targets (through the API)."`
}
