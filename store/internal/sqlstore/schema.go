package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/store"
)

// migrations is the schema, one entry per version; never edit an entry that
// has shipped, append a new one. The same text serves both databases:
// {{serial}} is the dialect's auto-incrementing primary key and {{blob}} its
// bytes type. Times are BIGINT Unix microseconds (NULL for none); labels and
// values are JSON text, but in instances, whose rows are a binary body
// (body.go). A migration may rewrite rows in Go too (upgrades).
var migrations = [][]string{
	1: {
		`CREATE TABLE instances (
			assert TEXT NOT NULL,
			fingerprint TEXT NOT NULL,
			labels TEXT NOT NULL,
			state TEXT NOT NULL,
			since BIGINT,
			reason TEXT NOT NULL,
			vals TEXT NOT NULL,
			last_eval BIGINT,
			violated_since BIGINT,
			clear_since BIGINT,
			PRIMARY KEY (assert, fingerprint))`,
		// changes holds the idempotency keys of committed changes.
		`CREATE TABLE changes (
			idem_key TEXT PRIMARY KEY,
			at BIGINT NOT NULL)`,
		`CREATE INDEX changes_at ON changes (at)`,
		`CREATE TABLE transitions (
			id {{serial}},
			idem_key TEXT NOT NULL UNIQUE,
			assert TEXT NOT NULL,
			fingerprint TEXT NOT NULL,
			labels TEXT NOT NULL,
			from_state TEXT NOT NULL,
			to_state TEXT NOT NULL,
			at BIGINT NOT NULL,
			reason TEXT NOT NULL,
			vals TEXT NOT NULL)`,
		`CREATE INDEX transitions_instance ON transitions (assert, fingerprint, at)`,
		`CREATE INDEX transitions_at ON transitions (at)`,
		`CREATE TABLE decisions (
			id {{serial}},
			idem_key TEXT NOT NULL UNIQUE,
			assert TEXT NOT NULL,
			fingerprint TEXT NOT NULL,
			at BIGINT NOT NULL,
			action TEXT NOT NULL,
			remediation TEXT NOT NULL,
			policy TEXT NOT NULL,
			reason TEXT NOT NULL,
			acted_at BIGINT,
			run_id TEXT NOT NULL)`,
		`CREATE INDEX decisions_owed ON decisions (acted_at, id)`,
		`CREATE INDEX decisions_at ON decisions (at)`,
		`CREATE TABLE runs (
			id TEXT PRIMARY KEY,
			remediation TEXT NOT NULL,
			assert TEXT NOT NULL,
			fingerprint TEXT NOT NULL,
			labels TEXT NOT NULL,
			lock_key TEXT NOT NULL,
			decision_key TEXT NOT NULL,
			shadow BOOLEAN NOT NULL,
			status TEXT NOT NULL,
			started BIGINT NOT NULL,
			ended BIGINT,
			outcome TEXT NOT NULL)`,
		`CREATE INDEX runs_limits ON runs (remediation, lock_key, started)`,
		`CREATE INDEX runs_status ON runs (status)`,
		`CREATE INDEX runs_started ON runs (started)`,
		`CREATE TABLE run_steps (
			run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
			seq BIGINT NOT NULL,
			name TEXT NOT NULL,
			attempt BIGINT NOT NULL,
			started BIGINT NOT NULL,
			ended BIGINT,
			outcome TEXT NOT NULL,
			exit_code BIGINT NOT NULL,
			output TEXT NOT NULL,
			error TEXT NOT NULL,
			PRIMARY KEY (run_id, seq))`,
		`CREATE TABLE approvals (
			run_id TEXT PRIMARY KEY REFERENCES runs (id) ON DELETE CASCADE,
			requested BIGINT NOT NULL,
			expires BIGINT NOT NULL,
			decided BIGINT,
			actor TEXT NOT NULL,
			approved BOOLEAN NOT NULL,
			comment TEXT NOT NULL)`,
		`CREATE TABLE locks (
			name TEXT PRIMARY KEY,
			owner TEXT NOT NULL,
			token BIGINT NOT NULL,
			acquired BIGINT NOT NULL,
			expires BIGINT NOT NULL)`,
		`CREATE TABLE outbox (
			id {{serial}},
			idem_key TEXT NOT NULL UNIQUE,
			channel TEXT NOT NULL,
			dedup_key TEXT NOT NULL,
			kind TEXT NOT NULL,
			payload TEXT NOT NULL,
			status TEXT NOT NULL,
			created BIGINT NOT NULL,
			next_attempt BIGINT NOT NULL,
			attempts BIGINT NOT NULL,
			max_attempts BIGINT NOT NULL,
			last_error TEXT NOT NULL,
			claimed_by TEXT NOT NULL,
			claim_until BIGINT,
			delivered BIGINT,
			provider_id TEXT NOT NULL)`,
		`CREATE INDEX outbox_due ON outbox (status, next_attempt)`,
		`CREATE INDEX outbox_dedup ON outbox (channel, dedup_key)`,
		`CREATE TABLE heartbeats (
			name TEXT PRIMARY KEY,
			last_success BIGINT,
			last_ping BIGINT,
			last_start BIGINT,
			start_rid TEXT NOT NULL,
			last_exit BIGINT NOT NULL,
			failed BOOLEAN NOT NULL,
			paused BOOLEAN NOT NULL,
			created BIGINT)`,
		`CREATE TABLE pings (
			id {{serial}},
			heartbeat TEXT NOT NULL,
			kind TEXT NOT NULL,
			exit_code BIGINT NOT NULL,
			rid TEXT NOT NULL,
			at BIGINT NOT NULL,
			body TEXT NOT NULL,
			source TEXT NOT NULL)`,
		`CREATE INDEX pings_heartbeat ON pings (heartbeat, id)`,
		`CREATE TABLE silences (
			id TEXT PRIMARY KEY,
			matchers TEXT NOT NULL,
			start_at BIGINT NOT NULL,
			end_at BIGINT,
			cron TEXT NOT NULL,
			duration_us BIGINT NOT NULL,
			author TEXT NOT NULL,
			comment TEXT NOT NULL,
			created BIGINT)`,
		`CREATE TABLE settings (
			name TEXT PRIMARY KEY,
			value TEXT NOT NULL,
			updated BIGINT NOT NULL,
			actor TEXT NOT NULL,
			reason TEXT NOT NULL)`,
		`CREATE TABLE audit (
			id {{serial}},
			at BIGINT NOT NULL,
			actor TEXT NOT NULL,
			action TEXT NOT NULL,
			target TEXT NOT NULL,
			reason TEXT NOT NULL,
			detail TEXT NOT NULL)`,
		`CREATE INDEX audit_at ON audit (at)`,
	},
	2: {
		// breakers holds the blast-radius breaker of each assert that ever tripped.
		`CREATE TABLE breakers (
			assert TEXT PRIMARY KEY,
			is_open BOOLEAN NOT NULL,
			page_group TEXT NOT NULL,
			group_label TEXT NOT NULL,
			group_value TEXT NOT NULL,
			violating BIGINT NOT NULL,
			instances BIGINT NOT NULL,
			opened_at BIGINT,
			reason TEXT NOT NULL,
			closed_at BIGINT,
			closed_by TEXT NOT NULL,
			close_reason TEXT NOT NULL)`,
		// lifecycles holds the lifecycle states operators set for targets.
		`CREATE TABLE lifecycles (
			target TEXT PRIMARY KEY,
			labels TEXT NOT NULL,
			state TEXT NOT NULL,
			updated BIGINT NOT NULL,
			actor TEXT NOT NULL,
			reason TEXT NOT NULL)`,
	},
	3: {
		// cluster_replicas holds the replicas sharing the store and their leases.
		`CREATE TABLE cluster_replicas (
			id TEXT PRIMARY KEY,
			address TEXT NOT NULL,
			started BIGINT NOT NULL,
			renewed BIGINT NOT NULL,
			lease_until BIGINT NOT NULL)`,
		// cluster_shares holds who evaluates each share and its fencing epoch.
		`CREATE TABLE cluster_shares (
			name TEXT PRIMARY KEY,
			owner TEXT NOT NULL,
			epoch BIGINT NOT NULL,
			since BIGINT NOT NULL)`,
	},
	4: {
		// A heartbeat's pings are a chain: each ping names the heartbeat's
		// previous one (prev) and its number among them (seq); the heartbeat
		// names its newest (last_ping_id) and how many it has had (ping_seq).
		// The pings table is then written in ID order only, without an index
		// by heartbeat whose pages every ping dirtied at random.
		`ALTER TABLE pings ADD COLUMN prev BIGINT`,
		`ALTER TABLE pings ADD COLUMN seq BIGINT NOT NULL DEFAULT 0`,
		`ALTER TABLE heartbeats ADD COLUMN last_ping_id BIGINT`,
		`ALTER TABLE heartbeats ADD COLUMN ping_seq BIGINT NOT NULL DEFAULT 0`,
		`UPDATE pings SET prev = (SELECT MAX(p.id) FROM pings p WHERE p.heartbeat = pings.heartbeat AND p.id < pings.id),
			seq = (SELECT COUNT(*) FROM pings p WHERE p.heartbeat = pings.heartbeat AND p.id <= pings.id)`,
		`UPDATE heartbeats SET last_ping_id = (SELECT MAX(id) FROM pings WHERE pings.heartbeat = heartbeats.name),
			ping_seq = (SELECT COUNT(*) FROM pings WHERE pings.heartbeat = heartbeats.name)`,
		`DROP INDEX pings_heartbeat`,
	},
	5: {
		// An instance is its key and a binary body (body.go); upgrades[5]
		// moves the rows of the JSON layout into it.
		`CREATE TABLE instances_body (
			assert TEXT NOT NULL,
			fingerprint TEXT NOT NULL,
			body {{blob}} NOT NULL,
			PRIMARY KEY (assert, fingerprint))`,
	},
}

// upgrades rewrite rows in Go after the statements of their migration, in
// its transaction.
var upgrades = map[int]func(ctx context.Context, tx *sql.Tx, d Dialect) error{
	5: upgradeInstanceBodies,
}

// upgradeInstanceBodies moves the instances from the columns of schema 1
// (labels and values as JSON) into instances_body, which then takes the
// name instances. It reads them in batches by key, so that its memory does
// not grow with the number of instances.
func upgradeInstanceBodies(ctx context.Context, tx *sql.Tx, d Dialect) error {
	ins, err := tx.PrepareContext(ctx, d.q(`INSERT INTO instances_body (assert, fingerprint, body) VALUES (?, ?, ?)`))
	if err != nil {
		return err
	}
	defer ins.Close()
	const batch = 10_000
	var lastAssert, lastFP string
	for first := true; ; first = false {
		q, args := `SELECT assert, fingerprint, labels, state, since, reason, vals, last_eval, violated_since, clear_since FROM instances`, []any{}
		if !first {
			q, args = q+` WHERE assert > ? OR (assert = ? AND fingerprint > ?)`, []any{lastAssert, lastAssert, lastFP}
		}
		rows, err := tx.QueryContext(ctx, d.q(q+fmt.Sprintf(` ORDER BY assert, fingerprint LIMIT %d`, batch)), args...)
		if err != nil {
			return err
		}
		got, err := collect(rows, scanInstanceJSON)
		if err != nil {
			return err
		}
		for _, in := range got {
			if _, err := ins.ExecContext(ctx, in.Assert, in.Fingerprint, encBody(in)); err != nil {
				return fmt.Errorf("instance %s/%s: %w", in.Assert, in.Fingerprint, err)
			}
		}
		if len(got) < batch {
			break
		}
		lastAssert, lastFP = got[len(got)-1].Assert, got[len(got)-1].Fingerprint
	}
	for _, stmt := range []string{`DROP TABLE instances`, `ALTER TABLE instances_body RENAME TO instances`} {
		if _, err := tx.ExecContext(ctx, stmt); err != nil {
			return err
		}
	}
	return nil
}

// scanInstanceJSON reads an instance in the columns of schema 1.
func scanInstanceJSON(sc interface{ Scan(...any) error }) (assertd.Instance, error) {
	var in assertd.Instance
	var labels, vals, state string
	var since, last, viol, clr sql.NullInt64
	if err := sc.Scan(&in.Assert, &in.Fingerprint, &labels, &state, &since, &in.Reason, &vals, &last, &viol, &clr); err != nil {
		return in, err
	}
	in.State = assertd.State(state)
	in.Since, in.LastEval, in.ViolatedSince, in.ClearSince = fromMicros(since), fromMicros(last), fromMicros(viol), fromMicros(clr)
	var err error
	if in.Labels, err = decLabels(labels); err == nil {
		in.Values, err = decValues(vals)
	}
	if err != nil {
		return in, fmt.Errorf("instance %s/%s: %w", in.Assert, in.Fingerprint, err)
	}
	return in, nil
}

// SchemaVersion is the schema version this build writes.
var SchemaVersion = len(migrations) - 1

// Migrate brings the schema up to the version this build writes, in one
// transaction.
func Migrate(ctx context.Context, w *sql.DB, d Dialect) error {
	return MigrateTo(ctx, w, d, SchemaVersion)
}

// MigrateTo brings the schema up to version (at most SchemaVersion), in one
// transaction: tests build a database as an older assertd left it.
func MigrateTo(ctx context.Context, w *sql.DB, d Dialect, version int) error {
	if version > SchemaVersion {
		return fmt.Errorf("schema version %d is newer than this assertd knows (%d): %w", version, SchemaVersion, store.ErrInvalid)
	}
	tx, err := w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()
	if d.LockSchema != "" {
		if _, err := tx.ExecContext(ctx, d.LockSchema); err != nil {
			return err
		}
	}
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL)`); err != nil {
		return err
	}
	var v int
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_version`).Scan(&v); err != nil {
		return err
	}
	if v > SchemaVersion {
		return fmt.Errorf("the database has schema version %d, newer than this assertd knows (%d): run a newer assertd: %w", v, SchemaVersion, store.ErrInvalid)
	}
	for ; v < version; v++ {
		for _, stmt := range migrations[v+1] {
			stmt = strings.NewReplacer("{{serial}}", d.Serial, "{{blob}}", d.Blob).Replace(stmt)
			if _, err := tx.ExecContext(ctx, stmt); err != nil {
				return fmt.Errorf("migration %d: %w", v+1, err)
			}
		}
		if up := upgrades[v+1]; up != nil {
			if err := up(ctx, tx, d); err != nil {
				return fmt.Errorf("migration %d: %w", v+1, err)
			}
		}
		if _, err := tx.ExecContext(ctx, d.q(`INSERT INTO schema_version (version) VALUES (?)`), v+1); err != nil {
			return err
		}
	}
	return tx.Commit()
}
