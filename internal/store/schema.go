package store

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
)

// A migration moves the schema from version i (its index in the list) to
// i+1. PRAGMA user_version holds the version; each step runs in one
// transaction with the version bump, so a failed step leaves the previous
// version intact. Steps are only ever appended.
type migration struct {
	name string
	sql  string
}

var migrations = []migration{
	{name: "bans and positions", sql: schemaV1},
}

// Times are Unix milliseconds; 0 stands for the zero time (a permanent ban's
// end). A target is stored as its masked address (4 or 16 bytes) and prefix
// length, which keeps rows small and lets a report group addresses by prefix.
//
// One table holds every ban ever made. A row with ended_at NULL is in force;
// ending a ban sets ended_at and reason and drops its lines. The partial
// unique index makes (jail, target) unique among the bans in force only.
const schemaV1 = `
CREATE TABLE ban (
	id        INTEGER PRIMARY KEY,
	jail      TEXT    NOT NULL,
	addr      BLOB    NOT NULL,
	bits      INTEGER NOT NULL,
	start_at  INTEGER NOT NULL,
	end_at    INTEGER NOT NULL,
	ended_at  INTEGER,
	reason    TEXT,
	failures  INTEGER NOT NULL,
	manual    INTEGER NOT NULL,
	count     INTEGER NOT NULL,
	lines     BLOB
) STRICT;
CREATE UNIQUE INDEX ban_active ON ban (jail, addr, bits) WHERE ended_at IS NULL;
CREATE INDEX ban_expiry ON ban (end_at) WHERE ended_at IS NULL;
CREATE INDEX ban_addr ON ban (addr, bits, jail, start_at, manual);
CREATE INDEX ban_start ON ban (start_at);

CREATE TABLE position (
	path        TEXT    PRIMARY KEY,
	dev         INTEGER NOT NULL,
	inode       INTEGER NOT NULL,
	file_offset INTEGER NOT NULL,
	head_len    INTEGER NOT NULL,
	head_hash   BLOB    NOT NULL,
	saved_at    INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
`

// migrate brings the database to len(migs). A new database also gets
// logjail's application ID, which tells it apart from any other SQLite file.
func migrate(db *sql.DB, migs []migration, log *slog.Logger) error {
	ctx := context.Background()
	var version int
	if err := db.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	for version < len(migs) {
		m := migs[version]
		if err := migrateStep(ctx, db, version, m); err != nil {
			return fmt.Errorf("migrate schema %d->%d (%s): %w", version, version+1, m.name, err)
		}
		log.Info("database schema migrated", "from", version, "to", version+1, "step", m.name)
		version++
	}
	return nil
}

func migrateStep(ctx context.Context, db *sql.DB, version int, m migration) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if version == 0 {
		if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA application_id = %d", applicationID)); err != nil {
			return err
		}
	}
	if _, err := tx.ExecContext(ctx, m.sql); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", version+1)); err != nil {
		return err
	}
	return tx.Commit()
}
