package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/store"
)

func (s *DB) Commit(ctx context.Context, c store.Change) (store.CommitResult, error) {
	var res store.CommitResult
	at := c.At
	for _, t := range []time.Time{at, when(c.Transition), whenD(c.Decision), whenI(c.Instance)} {
		if at.IsZero() {
			at = t
		}
	}
	switch {
	case c.Key == "":
		return res, fmt.Errorf("store: commit: the change has no idempotency key: %w", store.ErrInvalid)
	case at.IsZero():
		return res, fmt.Errorf("store: commit %s: the change has no time: %w", c.Key, store.ErrInvalid)
	case c.Instance != nil && (c.Instance.Assert == "" || c.Instance.Fingerprint == ""):
		return res, fmt.Errorf("store: commit %s: the instance has no assert or fingerprint: %w", c.Key, store.ErrInvalid)
	case c.Transition != nil && (c.Transition.Assert == "" || c.Transition.Fingerprint == "" || c.Transition.At.IsZero()):
		return res, fmt.Errorf("store: commit %s: the transition has no assert, fingerprint or time: %w", c.Key, store.ErrInvalid)
	case c.Decision != nil && (c.Decision.Action == "" || c.Decision.At.IsZero()):
		return res, fmt.Errorf("store: commit %s: the decision has no action or time: %w", c.Key, store.ErrInvalid)
	}
	msgs := make([]assertd.Message, len(c.Messages))
	for i, m := range c.Messages {
		if m.Key == "" {
			m.Key = fmt.Sprintf("%s/%d", c.Key, i)
		}
		if m.Created.IsZero() {
			m.Created = at
		}
		if err := checkMessage(m); err != nil {
			return res, fmt.Errorf("store: commit %s: %w", c.Key, err)
		}
		msgs[i] = m
	}
	err := s.tx(ctx, "commit "+c.Key, func(tx *sql.Tx) error {
		r, err := s.exec(ctx, tx, `INSERT INTO changes (idem_key, at) VALUES (?, ?) ON CONFLICT (idem_key) DO NOTHING`, c.Key, tm(at))
		if err != nil {
			return err
		}
		if n, err := r.RowsAffected(); err != nil || n == 0 {
			return err // committed before: nothing to do
		}
		if t := c.Transition; t != nil {
			if res.TransitionID, err = s.insertTransition(ctx, tx, c.Key, *t); err != nil || res.TransitionID == 0 {
				// No ID: the transition is stored, so the change was
				// committed before (its key since compacted away).
				return err
			}
		}
		res.Applied = true
		if c.Instance != nil {
			if err := s.putInstance(ctx, tx, *c.Instance); err != nil {
				return err
			}
		}
		if d := c.Decision; d != nil {
			key := d.Key
			if key == "" {
				key = c.Key
			}
			acted := d.ActedAt
			if acted.IsZero() && !d.NeedsAction() {
				acted = d.At
			}
			err := s.queryRow(ctx, tx, `INSERT INTO decisions (idem_key, assert, fingerprint, at, action, remediation, policy, reason, acted_at, run_id)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
				key, d.Assert, d.Fingerprint, tm(d.At), string(d.Action), d.Remediation, d.Policy, d.Reason, tm(acted), d.RunID).Scan(&res.DecisionID)
			if s.d.UniqueViolation(err) {
				// Another change already made this decision: refuse the
				// whole change rather than act twice or lose this one.
				return fmt.Errorf("decision key %q belongs to another change: %w", key, store.ErrConflict)
			}
			if err != nil {
				return err
			}
		}
		res.MessageIDs, err = s.insertMessages(ctx, tx, msgs)
		return err
	})
	if err != nil {
		return store.CommitResult{}, err
	}
	return res, nil
}

func when(t *assertd.Transition) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.At
}

func whenD(d *assertd.Decision) time.Time {
	if d == nil {
		return time.Time{}
	}
	return d.At
}

func whenI(in *assertd.Instance) time.Time {
	if in == nil {
		return time.Time{}
	}
	return in.LastEval
}

func (s *DB) insertTransition(ctx context.Context, q querier, key string, t assertd.Transition) (int64, error) {
	var id int64
	err := s.queryRow(ctx, q, `INSERT INTO transitions (idem_key, assert, fingerprint, labels, from_state, to_state, at, reason, vals)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (idem_key) DO NOTHING RETURNING id`,
		key, t.Assert, t.Fingerprint, encLabels(t.Labels), string(t.From), string(t.To), tm(t.At), t.Reason, encValues(t.Values)).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return id, err
}

func (s *DB) putInstance(ctx context.Context, q querier, in assertd.Instance) error {
	_, err := s.exec(ctx, q, `INSERT INTO instances (assert, fingerprint, body) VALUES (?, ?, ?)
		ON CONFLICT (assert, fingerprint) DO UPDATE SET body = excluded.body`,
		in.Assert, in.Fingerprint, encBody(in))
	return err
}

func (s *DB) PutInstance(ctx context.Context, in assertd.Instance) error {
	if in.Assert == "" || in.Fingerprint == "" {
		return fmt.Errorf("store: put instance: no assert or fingerprint: %w", store.ErrInvalid)
	}
	return s.tx(ctx, "put instance "+in.Assert, func(tx *sql.Tx) error { return s.putInstance(ctx, tx, in) })
}

const instanceCols = `assert, fingerprint, body`

func scanInstance(sc interface{ Scan(...any) error }) (assertd.Instance, error) {
	var in assertd.Instance
	var body []byte
	if err := sc.Scan(&in.Assert, &in.Fingerprint, &body); err != nil {
		return in, err
	}
	if err := decBody(&in, body, nil); err != nil {
		return in, fmt.Errorf("instance %s/%s: %w", in.Assert, in.Fingerprint, err)
	}
	return in, nil
}

func (s *DB) Instance(ctx context.Context, assert, fingerprint string) (assertd.Instance, error) {
	var in assertd.Instance
	err := s.read("instance "+assert, func(q querier) (err error) {
		in, err = scanInstance(s.queryRow(ctx, q, `SELECT `+instanceCols+` FROM instances WHERE assert = ? AND fingerprint = ?`, assert, fingerprint))
		return notFound(err, "instance "+assert+"/"+fingerprint)
	})
	return in, err
}

func (s *DB) Instances(ctx context.Context, assert string) ([]assertd.Instance, error) {
	var out []assertd.Instance
	err := s.EachInstance(ctx, assert, func(in assertd.Instance) error {
		out = append(out, in)
		return nil
	})
	return out, err
}

// EachInstance calls fn with every stored instance (of assert, or all when
// assert is ""), ordered by assert and fingerprint, as the rows are read:
// no slice of them all is built. An error from fn stops the reading and is
// returned.
func (s *DB) EachInstance(ctx context.Context, assert string, fn func(assertd.Instance) error) error {
	return s.read("instances", func(q querier) error {
		var w where
		w.eq("assert", assert)
		rows, err := s.query(ctx, q, `SELECT `+instanceCols+` FROM instances`+w.String()+` ORDER BY assert, fingerprint`, w.args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		var name, fp, body sql.RawBytes
		var sh shared // one copy of what repeats: strings, label sets
		var last string
		for rows.Next() {
			if err := rows.Scan(&name, &fp, &body); err != nil {
				return err
			}
			var in assertd.Instance
			if string(name) != last { // the rows come by assert: one copy of its name
				last = string(name)
			}
			in.Assert, in.Fingerprint = last, string(fp)
			if err := decBody(&in, body, &sh); err != nil {
				return fmt.Errorf("instance %s/%s: %w", in.Assert, in.Fingerprint, err)
			}
			if err := fn(in); err != nil {
				return err
			}
		}
		return rows.Err()
	})
}

func (s *DB) DeleteInstance(ctx context.Context, assert, fingerprint string) error {
	_, err := s.write(ctx, "delete instance "+assert, `DELETE FROM instances WHERE assert = ? AND fingerprint = ?`, assert, fingerprint)
	return err
}

const transitionCols = `id, assert, fingerprint, labels, from_state, to_state, at, reason, vals`

func scanTransition(sc interface{ Scan(...any) error }) (assertd.Transition, error) {
	var t assertd.Transition
	var labels, vals, from, to string
	var at sql.NullInt64
	if err := sc.Scan(&t.ID, &t.Assert, &t.Fingerprint, &labels, &from, &to, &at, &t.Reason, &vals); err != nil {
		return t, err
	}
	t.From, t.To, t.At = assertd.State(from), assertd.State(to), fromMicros(at)
	var err error
	if t.Labels, err = decLabels(labels); err != nil {
		return t, err
	}
	t.Values, err = decValues(vals)
	return t, err
}

func (s *DB) Transitions(ctx context.Context, f store.TransitionFilter) ([]assertd.Transition, error) {
	var out []assertd.Transition
	err := s.read("transitions", func(q querier) error {
		var w where
		w.eq("assert", f.Assert)
		w.eq("fingerprint", f.Fingerprint)
		w.eq("to_state", string(f.To))
		if !f.Since.IsZero() {
			w.add("at >= ?", tm(f.Since))
		}
		if !f.Until.IsZero() {
			w.add("at < ?", tm(f.Until))
		}
		rows, err := s.query(ctx, q, `SELECT `+transitionCols+` FROM transitions`+w.String()+
			fmt.Sprintf(` ORDER BY at DESC, id DESC LIMIT %d`, limit(f.Limit)), w.args...)
		if err != nil {
			return err
		}
		out, err = collect(rows, scanTransition)
		return err
	})
	return out, err
}

const decisionCols = `id, idem_key, assert, fingerprint, at, action, remediation, policy, reason, acted_at, run_id`

func scanDecision(sc interface{ Scan(...any) error }) (assertd.Decision, error) {
	var d assertd.Decision
	var action string
	var at, acted sql.NullInt64
	err := sc.Scan(&d.ID, &d.Key, &d.Assert, &d.Fingerprint, &at, &action, &d.Remediation, &d.Policy, &d.Reason, &acted, &d.RunID)
	d.Action, d.At, d.ActedAt = assertd.Action(action), fromMicros(at), fromMicros(acted)
	return d, err
}

func (s *DB) Decisions(ctx context.Context, f store.DecisionFilter) ([]assertd.Decision, error) {
	var out []assertd.Decision
	err := s.read("decisions", func(q querier) error {
		var w where
		w.eq("assert", f.Assert)
		w.eq("fingerprint", f.Fingerprint)
		w.eq("action", string(f.Action))
		rows, err := s.query(ctx, q, `SELECT `+decisionCols+` FROM decisions`+w.String()+
			fmt.Sprintf(` ORDER BY at DESC, id DESC LIMIT %d`, limit(f.Limit)), w.args...)
		if err != nil {
			return err
		}
		out, err = collect(rows, scanDecision)
		return err
	})
	return out, err
}

func (s *DB) PendingDecisions(ctx context.Context) ([]assertd.Decision, error) {
	var out []assertd.Decision
	err := s.read("pending decisions", func(q querier) error {
		rows, err := s.query(ctx, q, `SELECT `+decisionCols+` FROM decisions WHERE acted_at IS NULL ORDER BY id`)
		if err != nil {
			return err
		}
		out, err = collect(rows, scanDecision)
		return err
	})
	return out, err
}

// collect scans every row with scan and closes rows.
func collect[T any](rows *sql.Rows, scan func(interface{ Scan(...any) error }) (T, error)) ([]T, error) {
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}
