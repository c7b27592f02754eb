package app

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/prometheus/prometheus/rules"

	"github.com/assertd/assertd/asserts"
	"github.com/assertd/assertd/config"
	"github.com/assertd/assertd/sources"
	"github.com/assertd/assertd/sources/promrules"
)

// ruleAlerts keeps the outcome of each Prometheus rule group's last
// evaluation, for the alert feed, the UI and the API.
type ruleAlerts struct {
	mu     sync.Mutex
	groups map[string]promrules.Evaluation // by rules.GroupKey
	sink   func(all []promrules.Evaluation)
	// observe, when set, sees each evaluation after it is recorded (tests).
	observe func(promrules.Evaluation)
}

func (r *ruleAlerts) record(ev promrules.Evaluation) {
	r.mu.Lock()
	if r.groups == nil {
		r.groups = map[string]promrules.Evaluation{}
	}
	r.groups[rules.GroupKey(ev.File, ev.Group)] = ev
	all := r.allLocked()
	sink, observe := r.sink, r.observe
	r.mu.Unlock()
	if sink != nil {
		sink(all)
	}
	if observe != nil {
		observe(ev)
	}
}

// keep drops the groups that are no longer loaded.
func (r *ruleAlerts) keep(groups []*rules.Group) {
	r.mu.Lock()
	defer r.mu.Unlock()
	in := map[string]bool{}
	for _, g := range groups {
		in[rules.GroupKey(g.File(), g.Name())] = true
	}
	for k := range r.groups {
		if !in[k] {
			delete(r.groups, k)
		}
	}
}

func (r *ruleAlerts) allLocked() []promrules.Evaluation {
	out := make([]promrules.Evaluation, 0, len(r.groups))
	for _, ev := range r.groups {
		out = append(out, ev)
	}
	return out
}

// Evaluations are the last outcomes of the Prometheus rule groups.
func (r *ruleAlerts) Evaluations() []promrules.Evaluation {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.allLocked()
}

// newRules builds the evaluator of the Prometheus rule files on the
// embedded TSDB: it writes recording rules, ALERTS and ALERTS_FOR_STATE
// there and restores the for state from there.
func (a *App) newRules() {
	a.ruleAlerts = &ruleAlerts{sink: a.feedRules}
	a.ruleFeed = &ruleFeed{Feed: a.feed, rules: a.ruleAlerts}
	a.rules = promrules.New(promrules.Options{
		Query: a.emb.RuleQuery(), Queryable: a.emb.Queryable(), Appendable: a.emb.Appendable(),
		Clock: a.o.Clock, Logger: a.log, Registerer: a.o.Registerer, OnEval: a.ruleAlerts.record,
	})
}

// prepareRules builds the groups of set's Prometheus rule files, querying
// the source prometheus_rules.source names among srcs.
func (a *App) prepareRules(set *config.Set, srcs map[string]asserts.Querier) (*promrules.Next, error) {
	pr := set.Config.PrometheusRules
	tg := promrules.Target{ExternalURL: a.externalURL(set)} // the embedded TSDB's query
	if a.o.RuleFilesRelative {
		tg.RelativeTo = set.Dir()
	}
	if name := pr.Source; name != "" && name != config.EmbeddedName {
		q, ok := srcs[name]
		if !ok {
			return nil, fmt.Errorf("prometheus_rules.source %s is not defined", name)
		}
		tg.Query = sources.RuleQueryFunc(q)
	} else if q := a.o.Sources[config.EmbeddedName]; q != nil {
		tg.Query = sources.RuleQueryFunc(q)
	}
	if rw := pr.RemoteWrite; rw != nil && !a.o.NoRemoteWrite {
		tg.RemoteWrite = &promrules.RemoteWrite{URL: rw.URL, Timeout: rw.Timeout.Std()}
		var err error
		if tg.RemoteWrite.Token, err = a.secret(set, rw.BearerTokenEnv, rw.BearerTokenFile); err != nil {
			return nil, fmt.Errorf("prometheus_rules.remote_write: %w", err)
		}
	}
	if a.o.NoRemoteWrite && tg.Query != nil {
		// The recorded samples are in the embedded TSDB only.
		tg.Query = promrules.LocalRecorded(set, tg.Query, a.emb.RuleQuery())
	}
	return a.rules.Prepare(set, tg)
}

// secret reads a secret given by reference: the variable env or the file
// (relative to the config's directory); neither: none.
func (a *App) secret(set *config.Set, env, file string) (string, error) {
	switch {
	case env != "":
		v := a.o.Getenv(env)
		if v == "" {
			return "", fmt.Errorf("the variable %s is empty or unset", env)
		}
		return v, nil
	case file != "":
		if !filepath.IsAbs(file) {
			file = filepath.Join(set.Dir(), file)
		}
		read := a.o.ReadFile
		if read == nil {
			read = os.ReadFile
		}
		b, err := read(file)
		if err != nil {
			return "", fmt.Errorf("cannot read the secret file: %w", err)
		}
		return strings.TrimSpace(string(b)), nil
	}
	return "", nil
}

// externalURL is $externalURL of the rules' templates: web.external_url,
// else the listener's address.
func (a *App) externalURL(set *config.Set) string {
	if u := set.Config.Web.ExternalURL; u != "" {
		return u
	}
	a.mu.Lock()
	addr := a.bound
	a.mu.Unlock()
	if addr == "" {
		addr = a.listenAddr(set)
	}
	return "http://" + addr
}
