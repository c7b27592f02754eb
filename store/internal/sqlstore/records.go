package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/store"
)

// This file: heartbeats and pings, silences, runtime settings, the audit
// trail and compaction.

const heartbeatConflict = `
		ON CONFLICT (name) DO UPDATE SET last_success = excluded.last_success, last_ping = excluded.last_ping,
			last_start = excluded.last_start, start_rid = excluded.start_rid, last_exit = excluded.last_exit,
			failed = excluded.failed, paused = excluded.paused, created = excluded.created`

const putHeartbeatSQL = `INSERT INTO heartbeats (name, last_success, last_ping, last_start, start_rid, last_exit, failed, paused, created)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)` + heartbeatConflict

func heartbeatArgs(h assertd.HeartbeatRecord) []any { return appendHeartbeatArgs(nil, h) }

// appendHeartbeatArgs appends h's columns to args (the ping committer's
// batches, without a slice per heartbeat).
func appendHeartbeatArgs(args []any, h assertd.HeartbeatRecord) []any {
	return append(args, h.Name, tm(h.LastSuccess), tm(h.LastPing), tm(h.LastStart), h.StartRunID, h.LastExit, h.Failed, h.Paused, tm(h.Created))
}

func (s *DB) putHeartbeat(ctx context.Context, q querier, h assertd.HeartbeatRecord) error {
	_, err := s.exec(ctx, q, putHeartbeatSQL, heartbeatArgs(h)...)
	return err
}

func (s *DB) PutHeartbeat(ctx context.Context, h assertd.HeartbeatRecord) error {
	if h.Name == "" {
		return fmt.Errorf("store: put heartbeat: no name: %w", store.ErrInvalid)
	}
	return s.tx(ctx, "put heartbeat "+h.Name, func(tx *sql.Tx) error { return s.putHeartbeat(ctx, tx, h) })
}

func (s *DB) RecordPing(ctx context.Context, h assertd.HeartbeatRecord, p assertd.Ping) (int64, error) {
	if h.Name == "" || p.At.IsZero() || (p.Heartbeat != "" && p.Heartbeat != h.Name) {
		return 0, fmt.Errorf("store: record ping: the ping needs a time and the heartbeat's name: %w", store.ErrInvalid)
	}
	return s.pings.record(ctx, s, h, p)
}

const heartbeatCols = `name, last_success, last_ping, last_start, start_rid, last_exit, failed, paused, created`

func scanHeartbeat(sc interface{ Scan(...any) error }) (assertd.HeartbeatRecord, error) {
	var h assertd.HeartbeatRecord
	var succ, ping, start, created sql.NullInt64
	err := sc.Scan(&h.Name, &succ, &ping, &start, &h.StartRunID, &h.LastExit, &h.Failed, &h.Paused, &created)
	h.LastSuccess, h.LastPing, h.LastStart, h.Created = fromMicros(succ), fromMicros(ping), fromMicros(start), fromMicros(created)
	return h, err
}

func (s *DB) Heartbeat(ctx context.Context, name string) (assertd.HeartbeatRecord, error) {
	var h assertd.HeartbeatRecord
	err := s.read("heartbeat "+name, func(q querier) (err error) {
		h, err = scanHeartbeat(s.queryRow(ctx, q, `SELECT `+heartbeatCols+` FROM heartbeats WHERE name = ?`, name))
		return notFound(err, "heartbeat "+name)
	})
	return h, err
}

func (s *DB) Heartbeats(ctx context.Context) ([]assertd.HeartbeatRecord, error) {
	var out []assertd.HeartbeatRecord
	err := s.read("heartbeats", func(q querier) error {
		rows, err := s.query(ctx, q, `SELECT `+heartbeatCols+` FROM heartbeats ORDER BY name`)
		if err != nil {
			return err
		}
		out, err = collect(rows, scanHeartbeat)
		return err
	})
	return out, err
}

func (s *DB) Pings(ctx context.Context, heartbeat string, n int) ([]assertd.Ping, error) {
	if n <= 0 || n > store.PingsKept {
		n = store.PingsKept
	}
	var out []assertd.Ping
	err := s.read("pings "+heartbeat, func(q querier) error {
		// The chain from the heartbeat's newest ping (see pingbatch.go); it
		// ends at the first ping no longer kept.
		rows, err := s.query(ctx, q, fmt.Sprintf(`WITH RECURSIVE chain (id, n) AS (
				SELECT last_ping_id, 1 FROM heartbeats WHERE name = ? AND last_ping_id IS NOT NULL
				UNION ALL
				SELECT p.prev, c.n + 1 FROM chain c JOIN pings p ON p.id = c.id WHERE p.prev IS NOT NULL AND c.n < %d)
			SELECT p.id, p.heartbeat, p.kind, p.exit_code, p.rid, p.at, p.body, p.source FROM chain c JOIN pings p ON p.id = c.id
			WHERE p.heartbeat = ? ORDER BY p.id DESC`, n), heartbeat, heartbeat)
		if err != nil {
			return err
		}
		out, err = collect(rows, func(sc interface{ Scan(...any) error }) (assertd.Ping, error) {
			var p assertd.Ping
			var kind string
			var at sql.NullInt64
			err := sc.Scan(&p.ID, &p.Heartbeat, &kind, &p.ExitCode, &p.RunID, &at, &p.Body, &p.Source)
			p.Kind, p.At = assertd.PingKind(kind), fromMicros(at)
			return p, err
		})
		return err
	})
	return out, err
}

func (s *DB) PutSilence(ctx context.Context, si assertd.Silence) error {
	if err := si.Validate(); err != nil {
		return fmt.Errorf("store: put silence: %w: %w", err, store.ErrInvalid)
	}
	if si.Created.IsZero() {
		return fmt.Errorf("store: put silence %s: no creation time: %w", si.ID, store.ErrInvalid)
	}
	matchers, err := json.Marshal(si.Matchers)
	if err != nil {
		return fmt.Errorf("store: put silence %s: %w", si.ID, err)
	}
	return s.tx(ctx, "put silence "+si.ID, func(tx *sql.Tx) error {
		if _, err := s.exec(ctx, tx, `INSERT INTO silences (id, matchers, start_at, end_at, cron, duration_us, author, comment, created)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (id) DO UPDATE SET matchers = excluded.matchers, start_at = excluded.start_at, end_at = excluded.end_at,
				cron = excluded.cron, duration_us = excluded.duration_us, author = excluded.author, comment = excluded.comment,
				created = excluded.created`,
			si.ID, string(matchers), tm(si.Start), tm(si.End), si.Cron, si.Duration.Std().Microseconds(), si.Author, si.Comment, tm(si.Created)); err != nil {
			return err
		}
		_, err := s.audit(ctx, tx, assertd.AuditEntry{At: si.Created, Actor: si.Author, Action: "silence.put", Target: si.ID,
			Reason: si.Comment, Detail: string(matchers)})
		return err
	})
}

func (s *DB) ExpireSilence(ctx context.Context, id, by string, at time.Time) error {
	if by == "" || at.IsZero() {
		return fmt.Errorf("store: expire silence %s: who, and when, is required: %w", id, store.ErrInvalid)
	}
	return s.tx(ctx, "expire silence "+id, func(tx *sql.Tx) error {
		res, err := s.exec(ctx, tx, `UPDATE silences SET end_at = CASE WHEN end_at IS NULL OR end_at > ? THEN ? ELSE end_at END,
			start_at = CASE WHEN start_at > ? THEN ? ELSE start_at END WHERE id = ?`, tm(at), tm(at), tm(at), tm(at), id)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			if err == nil {
				err = fmt.Errorf("silence %s: %w", id, store.ErrNotFound)
			}
			return err
		}
		_, err = s.audit(ctx, tx, assertd.AuditEntry{At: at, Actor: by, Action: "silence.expire", Target: id})
		return err
	})
}

const silenceCols = `id, matchers, start_at, end_at, cron, duration_us, author, comment, created`

func scanSilence(sc interface{ Scan(...any) error }) (assertd.Silence, error) {
	var si assertd.Silence
	var matchers string
	var start, end, created sql.NullInt64
	var dur int64
	if err := sc.Scan(&si.ID, &matchers, &start, &end, &si.Cron, &dur, &si.Author, &si.Comment, &created); err != nil {
		return si, err
	}
	si.Start, si.End, si.Created = fromMicros(start), fromMicros(end), fromMicros(created)
	si.Duration = assertd.Duration(time.Duration(dur) * time.Microsecond)
	if err := json.Unmarshal([]byte(matchers), &si.Matchers); err != nil {
		return si, fmt.Errorf("silence %s: stored matchers: %w", si.ID, err)
	}
	return si, nil
}

func (s *DB) Silence(ctx context.Context, id string) (assertd.Silence, error) {
	var si assertd.Silence
	err := s.read("silence "+id, func(q querier) (err error) {
		si, err = scanSilence(s.queryRow(ctx, q, `SELECT `+silenceCols+` FROM silences WHERE id = ?`, id))
		return notFound(err, "silence "+id)
	})
	return si, err
}

func (s *DB) Silences(ctx context.Context, now time.Time, includeExpired bool) ([]assertd.Silence, error) {
	var out []assertd.Silence
	err := s.read("silences", func(q querier) error {
		var w where
		if !includeExpired {
			w.add("(end_at IS NULL OR end_at > ?)", tm(now))
		}
		rows, err := s.query(ctx, q, `SELECT `+silenceCols+` FROM silences`+w.String()+` ORDER BY start_at, id`, w.args...)
		if err != nil {
			return err
		}
		out, err = collect(rows, scanSilence)
		return err
	})
	return out, err
}

func (s *DB) PutSetting(ctx context.Context, st assertd.Setting) error {
	if err := st.Validate(); err != nil {
		return fmt.Errorf("store: put setting: %w: %w", err, store.ErrInvalid)
	}
	if st.By == "" || st.Updated.IsZero() {
		return fmt.Errorf("store: put setting %s: who, and when, is required: %w", st.Key, store.ErrInvalid)
	}
	return s.tx(ctx, "put setting "+st.Key, func(tx *sql.Tx) error {
		if _, err := s.exec(ctx, tx, `INSERT INTO settings (name, value, updated, actor, reason) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated = excluded.updated, actor = excluded.actor, reason = excluded.reason`,
			st.Key, st.Value, tm(st.Updated), st.By, st.Reason); err != nil {
			return err
		}
		_, err := s.audit(ctx, tx, assertd.AuditEntry{At: st.Updated, Actor: st.By, Action: "setting.put", Target: st.Key, Reason: st.Reason, Detail: st.Value})
		return err
	})
}

func (s *DB) DeleteSetting(ctx context.Context, key, by string, at time.Time, reason string) error {
	if by == "" || at.IsZero() {
		return fmt.Errorf("store: delete setting %s: who, and when, is required: %w", key, store.ErrInvalid)
	}
	return s.tx(ctx, "delete setting "+key, func(tx *sql.Tx) error {
		res, err := s.exec(ctx, tx, `DELETE FROM settings WHERE name = ?`, key)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			if err == nil {
				err = fmt.Errorf("setting %s: %w", key, store.ErrNotFound)
			}
			return err
		}
		_, err = s.audit(ctx, tx, assertd.AuditEntry{At: at, Actor: by, Action: "setting.delete", Target: key, Reason: reason})
		return err
	})
}

func (s *DB) Settings(ctx context.Context) ([]assertd.Setting, error) {
	var out []assertd.Setting
	err := s.read("settings", func(q querier) error {
		rows, err := s.query(ctx, q, `SELECT name, value, updated, actor, reason FROM settings ORDER BY name`)
		if err != nil {
			return err
		}
		out, err = collect(rows, func(sc interface{ Scan(...any) error }) (assertd.Setting, error) {
			var st assertd.Setting
			var upd sql.NullInt64
			err := sc.Scan(&st.Key, &st.Value, &upd, &st.By, &st.Reason)
			st.Updated = fromMicros(upd)
			return st, err
		})
		return err
	})
	return out, err
}

func (s *DB) audit(ctx context.Context, q querier, e assertd.AuditEntry) (int64, error) {
	var id int64
	err := s.queryRow(ctx, q, `INSERT INTO audit (at, actor, action, target, reason, detail) VALUES (?, ?, ?, ?, ?, ?) RETURNING id`,
		tm(e.At), e.Actor, e.Action, e.Target, e.Reason, head(e.Detail, maxErrorText)).Scan(&id)
	return id, err
}

func (s *DB) Audit(ctx context.Context, e assertd.AuditEntry) (int64, error) {
	if e.At.IsZero() || e.Actor == "" || e.Action == "" {
		return 0, fmt.Errorf("store: audit: an entry needs a time, an actor and an action: %w", store.ErrInvalid)
	}
	var id int64
	err := s.tx(ctx, "audit "+e.Action, func(tx *sql.Tx) (err error) {
		id, err = s.audit(ctx, tx, e)
		return err
	})
	return id, err
}

func (s *DB) AuditLog(ctx context.Context, f store.AuditFilter) ([]assertd.AuditEntry, error) {
	var out []assertd.AuditEntry
	err := s.read("audit log", func(q querier) error {
		var w where
		w.eq("actor", f.Actor)
		w.eq("action", f.Action)
		w.eq("target", f.Target)
		rows, err := s.query(ctx, q, `SELECT id, at, actor, action, target, reason, detail FROM audit`+w.String()+
			fmt.Sprintf(` ORDER BY at DESC, id DESC LIMIT %d`, limit(f.Limit)), w.args...)
		if err != nil {
			return err
		}
		out, err = collect(rows, func(sc interface{ Scan(...any) error }) (assertd.AuditEntry, error) {
			var e assertd.AuditEntry
			var at sql.NullInt64
			err := sc.Scan(&e.ID, &at, &e.Actor, &e.Action, &e.Target, &e.Reason, &e.Detail)
			e.At = fromMicros(at)
			return e, err
		})
		return err
	})
	return out, err
}

func (s *DB) Compact(ctx context.Context, before time.Time) (store.CompactStats, error) {
	var st store.CompactStats
	if before.IsZero() {
		return st, fmt.Errorf("store: compact: no cut-off time: %w", store.ErrInvalid)
	}
	b := tm(before)
	steps := []struct {
		n     *int64
		query string
		args  []any
	}{
		{&st.Transitions, `DELETE FROM transitions WHERE at < ? AND from_state = to_state`, []any{b}},
		{nil, `DELETE FROM changes WHERE at < ?`, []any{b}},
		{&st.Decisions, `DELETE FROM decisions WHERE at < ? AND acted_at IS NOT NULL`, []any{b}},
		{&st.Steps, `DELETE FROM run_steps WHERE run_id IN (SELECT id FROM runs WHERE ended < ? AND status NOT IN (?, ?))`,
			[]any{b, string(assertd.RunRunning), string(assertd.RunWaiting)}},
		{&st.Approvals, `DELETE FROM approvals WHERE (decided < ? OR expires < ?) AND run_id IN (SELECT id FROM runs WHERE ended < ?)`, []any{b, b, b}},
		{&st.Runs, `DELETE FROM runs WHERE ended < ? AND status NOT IN (?, ?)`,
			[]any{b, string(assertd.RunRunning), string(assertd.RunWaiting)}},
		{&st.Messages, `DELETE FROM outbox WHERE status IN (?, ?) AND created < ?`,
			[]any{string(assertd.MsgDelivered), string(assertd.MsgDead), b}},
		{&st.Pings, `DELETE FROM pings WHERE at < ?`, []any{b}},
		{&st.Silences, `DELETE FROM silences WHERE end_at < ?`, []any{b}},
	}
	err := s.tx(ctx, "compact", func(tx *sql.Tx) error {
		for _, step := range steps {
			res, err := s.exec(ctx, tx, step.query, step.args...)
			if err != nil {
				return err
			}
			if step.n != nil {
				if *step.n, err = res.RowsAffected(); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return store.CompactStats{}, err
	}
	return st, nil
}
