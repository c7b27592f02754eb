package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/assertd/assertd/store"
)

// migrations is the schema, one entry per version; never edit an entry that
// has shipped, append a new one. The same text serves both databases:
// {{serial}} is the dialect's auto-incrementing primary key. Times are BIGINT
// Unix microseconds (NULL for none); labels and values are JSON text.
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
			if _, err := tx.ExecContext(ctx, strings.ReplaceAll(stmt, "{{serial}}", d.Serial)); err != nil {
				return fmt.Errorf("migration %d: %w", v+1, err)
			}
		}
		if _, err := tx.ExecContext(ctx, d.q(`INSERT INTO schema_version (version) VALUES (?)`), v+1); err != nil {
			return err
		}
	}
	return tx.Commit()
}
