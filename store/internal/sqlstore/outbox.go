package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/store"
)

const maxErrorText = 4 << 10

func checkMessage(m assertd.Message) error {
	if m.Key == "" || m.Channel == "" || m.Created.IsZero() {
		return fmt.Errorf("outbox message %q: a message needs a key, a channel and a creation time: %w", m.Key, store.ErrInvalid)
	}
	return nil
}

func (s *DB) insertMessages(ctx context.Context, q querier, msgs []assertd.Message) ([]int64, error) {
	var ids []int64
	for _, m := range msgs {
		if m.NextAttempt.IsZero() {
			m.NextAttempt = m.Created
		}
		if m.MaxAttempts <= 0 {
			m.MaxAttempts = store.DefaultAttempts
		}
		var id int64
		err := s.queryRow(ctx, q, `INSERT INTO outbox (idem_key, channel, dedup_key, kind, payload, status, created, next_attempt,
				attempts, max_attempts, last_error, claimed_by, claim_until, delivered, provider_id)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, ?, '', '', NULL, NULL, '') ON CONFLICT (idem_key) DO NOTHING RETURNING id`,
			m.Key, m.Channel, m.DedupKey, m.Kind, m.Payload, string(assertd.MsgPending), tm(m.Created), tm(m.NextAttempt), m.MaxAttempts).Scan(&id)
		switch {
		case errors.Is(err, sql.ErrNoRows): // the key exists: skipped
		case err != nil:
			return nil, err
		default:
			ids = append(ids, id)
		}
	}
	return ids, nil
}

func (s *DB) Enqueue(ctx context.Context, msgs ...assertd.Message) ([]int64, error) {
	for _, m := range msgs {
		if err := checkMessage(m); err != nil {
			return nil, fmt.Errorf("store: enqueue: %w", err)
		}
	}
	var ids []int64
	err := s.tx(ctx, "enqueue", func(tx *sql.Tx) (err error) {
		ids, err = s.insertMessages(ctx, tx, msgs)
		return err
	})
	return ids, err
}

const messageCols = `id, idem_key, channel, dedup_key, kind, payload, status, created, next_attempt, attempts, max_attempts,
	last_error, claimed_by, claim_until, delivered, provider_id`

func scanMessage(sc interface{ Scan(...any) error }) (assertd.Message, error) {
	var m assertd.Message
	var status string
	var created, next, until, delivered sql.NullInt64
	err := sc.Scan(&m.ID, &m.Key, &m.Channel, &m.DedupKey, &m.Kind, &m.Payload, &status, &created, &next, &m.Attempts,
		&m.MaxAttempts, &m.LastError, &m.ClaimedBy, &until, &delivered, &m.ProviderID)
	m.Status = assertd.MessageStatus(status)
	m.Created, m.NextAttempt, m.ClaimUntil, m.Delivered = fromMicros(created), fromMicros(next), fromMicros(until), fromMicros(delivered)
	return m, err
}

// Claim is one UPDATE over a subquery that picks the due messages; on
// PostgreSQL the subquery locks them FOR UPDATE SKIP LOCKED, so concurrent
// claimers take disjoint sets without waiting on each other. A message whose
// claim expired after its last attempt becomes dead instead.
func (s *DB) Claim(ctx context.Context, owner string, now time.Time, lease time.Duration, n int) ([]assertd.Message, error) {
	if owner == "" || now.IsZero() || lease <= 0 || n <= 0 {
		return nil, fmt.Errorf("store: claim: an owner, a time, a positive lease and a positive limit are required: %w", store.ErrInvalid)
	}
	var out []assertd.Message
	err := s.tx(ctx, "claim", func(tx *sql.Tx) error {
		if _, err := s.exec(ctx, tx, `UPDATE outbox SET status = ?, last_error = ?, claimed_by = '', claim_until = NULL
			WHERE id IN (SELECT id FROM outbox WHERE status = ? AND claim_until <= ? AND attempts >= max_attempts`+s.d.SkipLocked+`)`,
			string(assertd.MsgDead), "the deliverer's claim expired after the last attempt",
			string(assertd.MsgSending), tm(now)); err != nil {
			return err
		}
		rows, err := s.query(ctx, tx, `UPDATE outbox SET status = ?, claimed_by = ?, claim_until = ?, attempts = attempts + 1
			WHERE id IN (SELECT id FROM outbox
				WHERE (status = ? AND next_attempt <= ?) OR (status = ? AND claim_until <= ?)
				ORDER BY next_attempt, id LIMIT `+strconv.Itoa(n)+s.d.SkipLocked+`)
			RETURNING `+messageCols,
			string(assertd.MsgSending), owner, tm(now.Add(lease)),
			string(assertd.MsgPending), tm(now), string(assertd.MsgSending), tm(now))
		if err != nil {
			return err
		}
		out, err = collect(rows, scanMessage)
		return err
	})
	sort.Slice(out, func(i, j int) bool {
		if !out[i].NextAttempt.Equal(out[j].NextAttempt) {
			return out[i].NextAttempt.Before(out[j].NextAttempt)
		}
		return out[i].ID < out[j].ID
	})
	return out, err
}

// Ack accepts a delivery whoever reports it: a message that was sent is
// delivered even if the sender's claim had lapsed.
func (s *DB) Ack(ctx context.Context, id int64, owner string, at time.Time, providerID string) error {
	if at.IsZero() {
		return fmt.Errorf("store: ack message %d: no time: %w", id, store.ErrInvalid)
	}
	return s.tx(ctx, fmt.Sprintf("ack message %d", id), func(tx *sql.Tx) error {
		res, err := s.exec(ctx, tx, `UPDATE outbox SET status = ?, delivered = ?, provider_id = ?, claimed_by = ?, claim_until = NULL, last_error = ''
			WHERE id = ? AND status <> ?`, string(assertd.MsgDelivered), tm(at), providerID, owner, id, string(assertd.MsgDelivered))
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n > 0 {
			return err
		}
		return s.messageExists(ctx, tx, id) // delivered before: fine
	})
}

func (s *DB) messageExists(ctx context.Context, q querier, id int64) error {
	var n int
	if err := s.queryRow(ctx, q, `SELECT COUNT(*) FROM outbox WHERE id = ?`, id).Scan(&n); err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("message %d: %w", id, store.ErrNotFound)
	}
	return nil
}

func (s *DB) Nack(ctx context.Context, id int64, owner string, at time.Time, errText string, retryAt time.Time, dead bool) error {
	if at.IsZero() || (retryAt.IsZero() && !dead) {
		return fmt.Errorf("store: nack message %d: no time or retry time: %w", id, store.ErrInvalid)
	}
	if retryAt.IsZero() {
		retryAt = at
	}
	return s.tx(ctx, fmt.Sprintf("nack message %d", id), func(tx *sql.Tx) error {
		deadNow := 0
		if dead {
			deadNow = 1
		}
		res, err := s.exec(ctx, tx, `UPDATE outbox SET status = CASE WHEN ? = 1 OR attempts >= max_attempts THEN ? ELSE ? END,
				next_attempt = ?, last_error = ?, claimed_by = '', claim_until = NULL
			WHERE id = ? AND status = ? AND claimed_by = ?`,
			deadNow, string(assertd.MsgDead), string(assertd.MsgPending), tm(retryAt), head(errText, maxErrorText),
			id, string(assertd.MsgSending), owner)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n > 0 {
			return err
		}
		if err := s.messageExists(ctx, tx, id); err != nil {
			return err
		}
		return fmt.Errorf("message %d is not claimed by %s: %w", id, owner, store.ErrConflict)
	})
}

func (s *DB) Release(ctx context.Context, id int64, owner string, next time.Time, note string) error {
	if next.IsZero() {
		return fmt.Errorf("store: release message %d: no time: %w", id, store.ErrInvalid)
	}
	return s.tx(ctx, fmt.Sprintf("release message %d", id), func(tx *sql.Tx) error {
		res, err := s.exec(ctx, tx, `UPDATE outbox SET status = ?, next_attempt = ?, attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END,
				last_error = CASE WHEN ? = '' THEN last_error ELSE ? END, claimed_by = '', claim_until = NULL
			WHERE id = ? AND status = ? AND claimed_by = ?`,
			string(assertd.MsgPending), tm(next), note, head(note, maxErrorText), id, string(assertd.MsgSending), owner)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n > 0 {
			return err
		}
		if err := s.messageExists(ctx, tx, id); err != nil {
			return err
		}
		return fmt.Errorf("message %d is not claimed by %s: %w", id, owner, store.ErrConflict)
	})
}

func (s *DB) Requeue(ctx context.Context, id int64, by string, at time.Time) error {
	if by == "" || at.IsZero() {
		return fmt.Errorf("store: requeue message %d: who, and when, is required: %w", id, store.ErrInvalid)
	}
	return s.tx(ctx, fmt.Sprintf("requeue message %d", id), func(tx *sql.Tx) error {
		res, err := s.exec(ctx, tx, `UPDATE outbox SET status = ?, next_attempt = ?, attempts = 0 WHERE id = ? AND status = ?`,
			string(assertd.MsgPending), tm(at), id, string(assertd.MsgDead))
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			if err == nil {
				if err = s.messageExists(ctx, tx, id); err == nil {
					err = fmt.Errorf("message %d is not dead: %w", id, store.ErrConflict)
				}
			}
			return err
		}
		_, err = s.audit(ctx, tx, assertd.AuditEntry{At: at, Actor: by, Action: "message.requeue", Target: strconv.FormatInt(id, 10)})
		return err
	})
}

func (s *DB) Message(ctx context.Context, id int64) (assertd.Message, error) {
	var m assertd.Message
	err := s.read(fmt.Sprintf("message %d", id), func(q querier) (err error) {
		m, err = scanMessage(s.queryRow(ctx, q, `SELECT `+messageCols+` FROM outbox WHERE id = ?`, id))
		return notFound(err, fmt.Sprintf("message %d", id))
	})
	return m, err
}

func (s *DB) Messages(ctx context.Context, f store.MessageFilter) ([]assertd.Message, error) {
	var out []assertd.Message
	err := s.read("messages", func(q querier) error {
		var w where
		w.eq("status", string(f.Status))
		w.eq("channel", f.Channel)
		w.eq("dedup_key", f.DedupKey)
		rows, err := s.query(ctx, q, `SELECT `+messageCols+` FROM outbox`+w.String()+
			fmt.Sprintf(` ORDER BY id DESC LIMIT %d`, limit(f.Limit)), w.args...)
		if err != nil {
			return err
		}
		out, err = collect(rows, scanMessage)
		return err
	})
	return out, err
}

func (s *DB) ProviderID(ctx context.Context, channel, dedupKey string) (string, error) {
	var id string
	err := s.read("provider id", func(q querier) error {
		err := s.queryRow(ctx, q, `SELECT provider_id FROM outbox WHERE channel = ? AND dedup_key = ? AND status = ? AND provider_id <> ''
			ORDER BY delivered DESC, id DESC LIMIT 1`, channel, dedupKey, string(assertd.MsgDelivered)).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		return err
	})
	return id, err
}
