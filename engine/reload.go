package engine

import (
	"crypto/sha256"
	"encoding/hex"
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
// unchanged keep their instances; changed or removed ones start afresh.
func (e *Engine) Reload(set *config.Set, errs strictyaml.Errors, now time.Time) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.reloadAt = now
	if len(errs) > 0 || set == nil {
		e.reloadErr = errs.Err()
		e.metrics.reloadOK.Set(0)
		e.metrics.reloads.WithLabelValues("failure").Inc()
		e.log.Error("reload failed; the last good configuration keeps running", "errors", len(errs), "first", errs[0].Error())
		return e.reloadErr
	}
	old := e.hashes
	e.install(set)
	for name := range e.instances {
		if e.hashes[name] == "" || e.hashes[name] != old[name] {
			delete(e.instances, name)
			delete(e.next, name)
			delete(e.last, name)
		}
	}
	for name := range e.next {
		if e.asserts[name] == nil {
			delete(e.next, name)
		}
	}
	e.reloadErr = nil
	e.metrics.reloadOK.Set(1)
	e.metrics.reloads.WithLabelValues("success").Inc()
	e.log.Info("configuration reloaded", "asserts", len(set.Asserts))
	e.poke() // new schedules and escalation policies count from now, not from the old wake
	return nil
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
