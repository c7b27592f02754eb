package app

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/assertd/assertd/alerts"
	"github.com/assertd/assertd/asserts"
	"github.com/assertd/assertd/config"
	"github.com/assertd/assertd/notifiers"
	"github.com/assertd/assertd/sources"
	"github.com/assertd/assertd/sources/heartbeat"
	"github.com/assertd/assertd/sources/promrules"
	"github.com/assertd/assertd/web"
)

// next is a configuration built in full for every component, not yet in
// force.
type next struct {
	set     *config.Set
	stamps  string // of the files, when they were read
	sources map[string]asserts.Querier
	hb      *heartbeat.Next
	del     *notifiers.Next
	access  *web.Access
	chatops *web.ChatOps
	targets *sources.Targets
	rules   *promrules.Next
}

// Reload reads the configuration again and builds everything it declares:
// asserts, remediations, heartbeats, notifiers (their secrets read again),
// escalation policies, API tokens, sources and scrape targets. Only when all
// of it is valid is it swapped into every component; otherwise nothing
// changes and the error is kept for the status (reload.ok false). Asserts and
// heartbeats whose definition is unchanged keep their state. Each change is
// logged, one line per change, without secret values.
func (a *App) Reload(ctx context.Context) error {
	a.reloadMu.Lock()
	defer a.reloadMu.Unlock()
	if a.closed {
		return errors.New("app: Reload after Stop")
	}
	now := a.now()
	old := a.Set()
	n, err := a.prepare(ctx)
	if err != nil {
		a.eng.RecordReload(err, now) // logs it
		return err
	}
	changes := Diff(old, n.set)
	for _, name := range a.del.SecretsChanged(n.del) {
		changes = append(changes, "notifier "+name+": its secret changed")
	}
	if n.access != nil {
		for _, name := range a.access.SecretsChanged(n.access) {
			changes = append(changes, "token "+name+": its secret changed")
		}
	}
	if n.chatops != nil {
		for _, name := range a.chatops.SecretsChanged(n.chatops) {
			changes = append(changes, "notifier "+name+": its signing or webhook secret changed")
		}
	}
	for _, c := range changes {
		a.log.Info("configuration changed", "change", c)
	}
	a.logWarnings(n.set)
	// From here on nothing is refused: every part was built above.
	retire := a.hb.Swap(ctx, n.hb)
	a.del.Swap(n.del)
	if n.access != nil {
		a.access.Swap(n.access)
	}
	if n.chatops != nil {
		a.chatops.Swap(n.chatops)
	}
	var errs []error
	if err := a.emb.ApplyTargets(n.targets); err != nil {
		errs = append(errs, fmt.Errorf("scrape targets: %w", err))
	}
	a.installRules(n.rules, n.set)
	a.eng.Install(n.set, n.sources, now)
	retire() // no assert in force refers to a removed heartbeat now
	a.mu.Lock()
	a.set, a.stamps = n.set, n.stamps
	a.mu.Unlock()
	if a.feed.Spoke(alerts.SenderRules) != (time.Time{}) {
		a.feedRules(a.ruleAlerts.Evaluations()) // the alerts of removed groups resolve
	}
	err = errors.Join(errs...)
	a.eng.RecordReload(err, now) // logs it
	return err
}

// prepare loads the configuration and builds every component's part of it,
// changing nothing.
func (a *App) prepare(ctx context.Context) (*next, error) {
	set, errs := config.Load(a.o.ConfigPath)
	if len(errs) > 0 {
		return nil, fmt.Errorf("%s has errors (run assertd check):\n%w", a.o.ConfigPath, errs)
	}
	a.applyOverrides(set)
	n := &next{set: set, stamps: fileStamps(set)}
	var err error
	if n.sources, err = a.buildSources(set); err != nil {
		return nil, err
	}
	if n.rules, err = a.prepareRules(set, n.sources); err != nil {
		return nil, err
	}
	if n.hb, err = a.hb.Prepare(ctx, set.Heartbeats, set.Config.Pings); err != nil {
		return nil, err
	}
	if n.del, err = a.del.Prepare(set.Config, set.Dir(), a.o.Getenv); err != nil {
		return nil, err
	}
	if a.access != nil {
		if n.access, err = web.LoadAccess(set.Config.Web, set.Dir(), a.o.Getenv); err != nil {
			return nil, err
		}
		// The listener stays where it is: a configuration that leaves it
		// without credentials on another address than loopback is refused.
		a.mu.Lock()
		addr := a.bound
		a.mu.Unlock()
		if addr == "" {
			addr = a.listenAddr(set)
		}
		if _, err := web.CheckListen(addr, n.access, a.lc); err != nil {
			return nil, err
		}
	}
	if a.chatops != nil {
		if n.chatops, err = web.LoadChatOps(set.Config.Notifiers, set.Dir(), a.o.Getenv); err != nil {
			return nil, err
		}
	}
	if n.targets, err = sources.PrepareTargets(set.Config.Sources.Embedded); err != nil {
		return nil, err
	}
	return n, nil
}

// notifyHUP starts taking SIGHUP (before Start says assertd runs, so that a
// SIGHUP sent then reloads instead of ending the process).
func notifyHUP() (<-chan os.Signal, func()) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	return hup, func() { signal.Stop(hup) }
}

// watch reloads on SIGHUP and when a configuration file changes, appears
// (a new match of a files: pattern) or goes.
func (a *App) watch(ctx context.Context, hup <-chan os.Signal) {
	var tick <-chan time.Time
	if a.o.ReloadEvery > 0 {
		t := time.NewTicker(a.o.ReloadEvery)
		defer t.Stop()
		tick = t.C
	}
	a.mu.Lock()
	seen := a.stamps
	a.mu.Unlock()
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			a.log.Info("SIGHUP: reloading")
		case <-tick:
			now := fileStamps(a.Set())
			if now == seen {
				continue
			}
			seen = now
			a.log.Info("a configuration file changed: reloading")
		}
		if a.Reload(ctx) == nil {
			a.mu.Lock()
			seen = a.stamps
			a.mu.Unlock()
		}
	}
}

// fileStamps summarises the files of a configuration: the config file, the
// files its patterns match now (so that a new file is noticed) and those
// loaded, with their modification times and sizes.
func fileStamps(set *config.Set) string {
	files := append([]string{set.ConfigPath}, set.Files...)
	if set.Config != nil {
		matched, _ := config.ConfigFiles(set.ConfigPath, set.Config, nil)
		for _, f := range matched {
			if !slices.Contains(files, f) {
				files = append(files, f)
			}
		}
	}
	var b strings.Builder
	for _, f := range files {
		if st, err := os.Stat(f); err == nil {
			fmt.Fprintf(&b, "%s:%d:%d;", f, st.ModTime().UnixNano(), st.Size())
		} else {
			fmt.Fprintf(&b, "%s:missing;", f)
		}
	}
	return b.String()
}

// logWarnings logs what assertd check reports as warnings (labels a
// remediation inserts into a URL or argv without an allow: pattern), one
// line each, at start and on each reload that takes effect.
func (a *App) logWarnings(set *config.Set) {
	for _, r := range set.Remediations {
		for _, w := range r.Warnings {
			a.log.Warn("check: "+w.Msg, "at", w.Pos.String())
		}
	}
}
