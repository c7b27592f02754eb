package engine

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/assertd/assertd/asserts"
	"github.com/assertd/assertd/config"
	"github.com/assertd/assertd/internal/strictyaml"
)

// definitionHash identifies what decides an assert's instances: when it is
// unchanged by a reload, the instances keep their state.
func definitionHash(a *asserts.Compiled) string {
	h := sha256.New()
	for _, q := range a.Queries {
		h.Write([]byte(q.Name + "=" + q.Text + "\x00"))
	}
	h.Write([]byte(strings.Join(a.Join, ",") + "\x00" + a.Assert.Expect + "\x00" + a.Assert.Clear + "\x00"))
	if t := a.Trigger; t != nil {
		h.Write([]byte(t.Sender + "=" + t.Selector + "\x00"))
	}
	labels := make([]string, 0, len(a.Labels))
	for k, v := range a.Labels {
		labels = append(labels, k+"="+v)
	}
	slices.Sort(labels)
	h.Write([]byte(strings.Join(labels, ",")))
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// Reload installs a new configuration. set is the result of config.Load: when
// errs is not empty the reload fails, the last good configuration keeps
// running, and the failure is kept for Status. Asserts whose definition is
// unchanged keep their instances; changed or removed ones start afresh. The
// sources stay as they are (see Install).
func (e *Engine) Reload(set *config.Set, errs strictyaml.Errors, now time.Time) error {
	if len(errs) > 0 || set == nil {
		err := errs.Err()
		if err == nil {
			err = errors.New("no configuration")
		}
		e.RecordReload(err, now)
		return err
	}
	e.Install(set, nil, now)
	e.RecordReload(nil, now)
	return nil
}

// configFlap is the flapping thresholds of a configuration.
func configFlap(set *config.Set) FlapThresholds {
	if f := set.Config; f != nil && f.Defaults.Flapping.High > 0 {
		return FlapThresholds{High: f.Defaults.Flapping.High, Low: f.Defaults.Flapping.Low}
	}
	return DefaultFlap
}

// Install puts a configuration and its sources in force (srcs nil: the
// sources stay). Asserts whose definition is unchanged keep their
// instances; changed or removed ones start afresh. The outcome of the
// reload is recorded separately, by RecordReload, once every other part
// took the configuration too.
func (e *Engine) Install(set *config.Set, srcs map[string]asserts.Querier, now time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	old := e.hashes
	e.install(set)
	if srcs != nil {
		e.sources = srcs
	}
	if e.flapCfg {
		e.opts.Flap = configFlap(set)
	}
	for name := range e.instances {
		if e.hashes[name] == "" || e.hashes[name] != old[name] {
			delete(e.instances, name)
			delete(e.next, name)
			delete(e.last, name)
			delete(e.floods, name)
			delete(e.baseline, name) // its next evaluation finds the fleet anew
		}
	}
	for name := range e.next {
		if e.asserts[name] == nil {
			delete(e.next, name)
		}
	}
	e.poke() // new schedules and escalation policies count from now, not from the old wake
}

// RecordReload records the outcome of a reload for the status and the
// metrics: err nil means every part took the new configuration; otherwise
// the reason is kept and assertd_config_last_reload_successful is 0.
func (e *Engine) RecordReload(err error, now time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.reloadAt, e.reloadErr = now, err
	if err != nil {
		e.metrics.reloadOK.Set(0)
		e.metrics.reloads.WithLabelValues("failure").Inc()
		e.log.Error("reload failed; the last good configuration keeps running", "err", err)
		return
	}
	e.metrics.reloadOK.Set(1)
	e.metrics.reloads.WithLabelValues("success").Inc()
	e.log.Info("configuration reloaded", "asserts", len(e.set.Asserts))
}

// ReloadStatus is the outcome of the last reload.
type ReloadStatus struct {
	At  time.Time
	Err error // nil: it worked (or there was none)
}

// LastReload returns the outcome of the last reload.
func (e *Engine) LastReload() ReloadStatus {
	e.mu.Lock()
	defer e.mu.Unlock()
	return ReloadStatus{At: e.reloadAt, Err: e.reloadErr}
}
