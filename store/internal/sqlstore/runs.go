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

func (s *DB) CreateRun(ctx context.Context, r assertd.Run) (bool, error) {
	switch {
	case r.ID == "" || r.Remediation == "" || r.Started.IsZero():
		return false, fmt.Errorf("store: create run: a run needs an id, a remediation and a start time: %w", store.ErrInvalid)
	case r.Status == "":
		r.Status = assertd.RunRunning
	}
	created := false
	err := s.tx(ctx, "create run "+r.ID, func(tx *sql.Tx) error {
		res, err := s.exec(ctx, tx, `INSERT INTO runs (id, remediation, assert, fingerprint, labels, lock_key, decision_key, shadow, status, started, ended, outcome)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`,
			r.ID, r.Remediation, r.Assert, r.Fingerprint, encLabels(r.Labels), r.LockKey, r.DecisionKey, r.Shadow,
			string(r.Status), tm(r.Started), tm(r.Ended), r.Outcome)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return err
		}
		created = true
		if r.DecisionKey != "" {
			_, err = s.exec(ctx, tx, `UPDATE decisions SET acted_at = ?, run_id = ? WHERE idem_key = ? AND acted_at IS NULL`,
				tm(r.Started), r.ID, r.DecisionKey)
		}
		return err
	})
	return created, err
}

func (s *DB) FinishRun(ctx context.Context, id string, status assertd.RunStatus, ended time.Time, outcome string) error {
	if !status.Final() || ended.IsZero() {
		return fmt.Errorf("store: finish run %s: %q is not a final status, or no end time: %w", id, status, store.ErrInvalid)
	}
	return s.updateRun(ctx, "finish run "+id, `UPDATE runs SET status = ?, ended = ?, outcome = ? WHERE id = ?`,
		id, string(status), tm(ended), outcome, id)
}

func (s *DB) SetRunStatus(ctx context.Context, id string, status assertd.RunStatus) error {
	if status.Final() {
		return fmt.Errorf("store: set run %s status: %q is final: use FinishRun: %w", id, status, store.ErrInvalid)
	}
	return s.updateRun(ctx, "set run status "+id, `UPDATE runs SET status = ? WHERE id = ?`, id, string(status), id)
}

func (s *DB) updateRun(ctx context.Context, op, query, id string, args ...any) error {
	n, err := s.write(ctx, op, query, args...)
	if err == nil && n == 0 {
		err = fmt.Errorf("store: %s: run %s: %w", op, id, store.ErrNotFound)
	}
	return err
}

const runCols = `id, remediation, assert, fingerprint, labels, lock_key, decision_key, shadow, status, started, ended, outcome`

func scanRun(sc interface{ Scan(...any) error }) (assertd.Run, error) {
	var r assertd.Run
	var labels, status string
	var started, ended sql.NullInt64
	if err := sc.Scan(&r.ID, &r.Remediation, &r.Assert, &r.Fingerprint, &labels, &r.LockKey, &r.DecisionKey, &r.Shadow,
		&status, &started, &ended, &r.Outcome); err != nil {
		return r, err
	}
	r.Status, r.Started, r.Ended = assertd.RunStatus(status), fromMicros(started), fromMicros(ended)
	var err error
	r.Labels, err = decLabels(labels)
	return r, err
}

func (s *DB) Run(ctx context.Context, id string) (assertd.Run, error) {
	var r assertd.Run
	err := s.read("run "+id, func(q querier) (err error) {
		r, err = scanRun(s.queryRow(ctx, q, `SELECT `+runCols+` FROM runs WHERE id = ?`, id))
		return notFound(err, "run "+id)
	})
	return r, err
}

func (s *DB) Runs(ctx context.Context, f store.RunFilter) ([]assertd.Run, error) {
	var out []assertd.Run
	err := s.read("runs", func(q querier) error {
		var w where
		w.eq("remediation", f.Remediation)
		w.eq("assert", f.Assert)
		w.eq("fingerprint", f.Fingerprint)
		w.eq("status", string(f.Status))
		rows, err := s.query(ctx, q, `SELECT `+runCols+` FROM runs`+w.String()+
			fmt.Sprintf(` ORDER BY started DESC, id DESC LIMIT %d`, limit(f.Limit)), w.args...)
		if err != nil {
			return err
		}
		out, err = collect(rows, scanRun)
		return err
	})
	return out, err
}

// RunStats counts runs that act: shadow runs and runs refused before they
// started do not use up max_runs or start a cooldown.
func (s *DB) RunStats(ctx context.Context, remediation, lockKey string, since time.Time) (store.RunStats, error) {
	var st store.RunStats
	err := s.read("run stats "+remediation, func(q querier) error {
		var last sql.NullInt64
		err := s.queryRow(ctx, q, `SELECT COUNT(CASE WHEN started >= ? THEN 1 END), MAX(started) FROM runs
			WHERE remediation = ? AND lock_key = ? AND NOT shadow AND status <> ?`,
			tm(since), remediation, lockKey, string(assertd.RunRefused)).Scan(&st.Count, &last)
		st.LastStart = fromMicros(last)
		return err
	})
	return st, err
}

func (s *DB) InterruptRuns(ctx context.Context, at time.Time, reason string) ([]assertd.Run, error) {
	return s.interruptRuns(ctx, "", at, reason)
}

func (s *DB) InterruptAssertRuns(ctx context.Context, assert string, at time.Time, reason string) ([]assertd.Run, error) {
	if assert == "" {
		return nil, fmt.Errorf("store: interrupt runs: no assert: %w", store.ErrInvalid)
	}
	return s.interruptRuns(ctx, assert, at, reason)
}

// interruptRuns interrupts the runs left running or waiting, of one assert
// (or all when assert is "").
func (s *DB) interruptRuns(ctx context.Context, assert string, at time.Time, reason string) ([]assertd.Run, error) {
	if at.IsZero() {
		return nil, fmt.Errorf("store: interrupt runs: no time: %w", store.ErrInvalid)
	}
	var runs []assertd.Run
	err := s.tx(ctx, "interrupt runs", func(tx *sql.Tx) error {
		w := where{}
		w.add("status IN (?, ?)", string(assertd.RunRunning), string(assertd.RunWaiting))
		w.eq("assert", assert)
		rows, err := s.query(ctx, tx, `SELECT `+runCols+` FROM runs`+w.String()+` ORDER BY started, id`, w.args...)
		if err != nil {
			return err
		}
		if runs, err = collect(rows, scanRun); err != nil {
			return err
		}
		for i, r := range runs {
			if _, err := s.exec(ctx, tx, `UPDATE runs SET status = ?, ended = ?, outcome = ? WHERE id = ?`,
				string(assertd.RunInterrupted), tm(at), reason, r.ID); err != nil {
				return err
			}
			runs[i].Status, runs[i].Ended, runs[i].Outcome = assertd.RunInterrupted, at.UTC(), reason
			if r.Shadow || r.Assert == "" {
				continue // a shadow run never owned its instance
			}
			in, err := scanInstance(s.queryRow(ctx, tx, `SELECT `+instanceCols+` FROM instances WHERE assert = ? AND fingerprint = ?`, r.Assert, r.Fingerprint))
			if errors.Is(err, sql.ErrNoRows) {
				in = assertd.Instance{Assert: r.Assert, Fingerprint: r.Fingerprint, Labels: r.Labels, State: assertd.Remediating}
			} else if err != nil {
				return err
			}
			from := in.State
			in.State, in.Since, in.Reason = assertd.Uncertain, at, fmt.Sprintf("run %s of %s was interrupted: %s", r.ID, r.Remediation, reason)
			if err := s.putInstance(ctx, tx, in); err != nil {
				return err
			}
			if _, err := s.insertTransition(ctx, tx, "interrupted/"+r.ID, assertd.Transition{
				Assert: in.Assert, Fingerprint: in.Fingerprint, Labels: in.Labels, From: from, To: assertd.Uncertain,
				At: at, Reason: in.Reason, Values: in.Values,
			}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return runs, nil
}

func (s *DB) PutStep(ctx context.Context, st assertd.RunStep) error {
	if st.RunID == "" || st.Seq < 0 || st.Started.IsZero() {
		return fmt.Errorf("store: put step: a step needs a run id, a sequence number >= 0 and a start time: %w", store.ErrInvalid)
	}
	if len(st.Output) > store.MaxStepOutput {
		marker := fmt.Sprintf("[assertd: output cut to its last %d bytes]\n", store.MaxStepOutput)
		st.Output = marker + tail(st.Output, store.MaxStepOutput-len(marker))
	}
	if st.Outcome == "" {
		st.Outcome = assertd.StepRunning
	}
	_, err := s.write(ctx, "put step "+st.RunID, `INSERT INTO run_steps (run_id, seq, name, attempt, started, ended, outcome, exit_code, output, error)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (run_id, seq) DO UPDATE SET name = excluded.name, attempt = excluded.attempt, started = excluded.started,
			ended = excluded.ended, outcome = excluded.outcome, exit_code = excluded.exit_code, output = excluded.output, error = excluded.error`,
		st.RunID, st.Seq, st.Name, st.Attempt, tm(st.Started), tm(st.Ended), string(st.Outcome), st.ExitCode, head(st.Output, store.MaxStepOutput), head(st.Error, store.MaxStepOutput))
	if s.d.ForeignKeyViolation(err) {
		return fmt.Errorf("store: put step: run %s: %w", st.RunID, store.ErrNotFound)
	}
	return err
}

func (s *DB) Steps(ctx context.Context, runID string) ([]assertd.RunStep, error) {
	var out []assertd.RunStep
	err := s.read("steps "+runID, func(q querier) error {
		rows, err := s.query(ctx, q, `SELECT run_id, seq, name, attempt, started, ended, outcome, exit_code, output, error
			FROM run_steps WHERE run_id = ? ORDER BY seq`, runID)
		if err != nil {
			return err
		}
		out, err = collect(rows, func(sc interface{ Scan(...any) error }) (assertd.RunStep, error) {
			var st assertd.RunStep
			var outcome string
			var started, ended sql.NullInt64
			err := sc.Scan(&st.RunID, &st.Seq, &st.Name, &st.Attempt, &started, &ended, &outcome, &st.ExitCode, &st.Output, &st.Error)
			st.Outcome, st.Started, st.Ended = assertd.StepOutcome(outcome), fromMicros(started), fromMicros(ended)
			return st, err
		})
		return err
	})
	return out, err
}
