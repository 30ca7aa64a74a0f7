// Package registry records every run of the toolkit (train, cv, predict,
// thresholds) in one SQLite file per project, so that results, the exact
// configuration and code that produced them, their curves and their
// artifacts are kept without anyone writing them down by hand.
//
// A run is opened with DB.Start and ended with Run.Finish or Run.Fail. A
// process that dies without either (kill -9, power loss, OOM killer) is
// detected by the next Open or List on the same machine and marked
// StatusInterrupted: the live process holds an flock on a per-run lock file,
// and the kernel releases that lock when the process dies, however it dies.
package registry

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	_ "modernc.org/sqlite" // pure-Go driver, so the binary needs no cgo for its registry
)

// DefaultPath is where commands look for the registry unless told otherwise.
const DefaultPath = "runs/registry.db"

// DB is an open registry. It is safe for concurrent use by several
// goroutines, and several processes may open the same file at once.
type DB struct {
	sql      *sql.DB
	path     string
	lockDir  string
	hostname string
}

// Open opens the registry at path, creating the file, its directory and its
// schema on first use and migrating an older schema forward. It marks runs
// whose process has died as interrupted.
func Open(path string) (*DB, error) {
	if path == "" {
		path = DefaultPath
	}
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("registry %s: %w", path, err)
		}
	}
	// busy_timeout lets a trainer and a dashboard write at the same time
	// without "database is locked" errors; WAL lets readers never block it.
	dsn := "file:" + path + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)" +
		"&_pragma=synchronous(NORMAL)&_pragma=foreign_keys(1)&_txlock=immediate"
	sdb, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("registry %s: %w", path, err)
	}
	host, _ := os.Hostname()
	db := &DB{
		sql:      sdb,
		path:     path,
		lockDir:  strings.TrimSuffix(path, filepath.Ext(path)) + ".locks",
		hostname: host,
	}
	if err := db.migrate(context.Background()); err != nil {
		sdb.Close()
		return nil, fmt.Errorf("registry %s: %w", path, db.storage(err))
	}
	if _, err := db.Reconcile(); err != nil {
		sdb.Close()
		return nil, fmt.Errorf("registry %s: %w", path, db.storage(err))
	}
	return db, nil
}

// Path returns the file the registry lives in.
func (db *DB) Path() string { return db.path }

// Close closes the database. Runs still open keep their locks: closing the
// registry does not end a run.
func (db *DB) Close() error { return db.sql.Close() }

// migrations[i] brings the schema from version i to i+1. Append only:
// files written by older binaries are upgraded in place, never rewritten.
var migrations = []string{
	`CREATE TABLE runs (
		id               INTEGER PRIMARY KEY AUTOINCREMENT,
		name             TEXT NOT NULL,
		kind             TEXT NOT NULL,
		args             TEXT NOT NULL DEFAULT '',
		config           TEXT NOT NULL DEFAULT '',
		code_version     TEXT NOT NULL DEFAULT '',
		code_dirty       INTEGER NOT NULL DEFAULT 0,
		data_fingerprint TEXT NOT NULL DEFAULT '',
		host             TEXT NOT NULL DEFAULT '',
		machine          TEXT NOT NULL DEFAULT '',
		pid              INTEGER NOT NULL DEFAULT 0,
		lock_path        TEXT NOT NULL DEFAULT '',
		started_at       INTEGER NOT NULL,
		ended_at         INTEGER,
		status           TEXT NOT NULL,
		error            TEXT NOT NULL DEFAULT '',
		log_tail         TEXT NOT NULL DEFAULT '',
		resumed_from     INTEGER REFERENCES runs(id),
		cv_f2            REAL,
		lb               REAL,
		note             TEXT NOT NULL DEFAULT ''
	);
	CREATE INDEX runs_status ON runs(status);
	CREATE TABLE metrics (
		run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
		step   INTEGER NOT NULL,
		epoch  REAL NOT NULL,
		name   TEXT NOT NULL,
		value  REAL NOT NULL,
		at     INTEGER NOT NULL
	);
	CREATE INDEX metrics_run ON metrics(run_id, name, step);
	CREATE TABLE group_f2 (
		run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
		grp    TEXT NOT NULL,
		f2     REAL NOT NULL,
		PRIMARY KEY (run_id, grp)
	);
	CREATE TABLE artifacts (
		run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
		kind   TEXT NOT NULL,
		path   TEXT NOT NULL,
		sha256 TEXT NOT NULL,
		size   INTEGER NOT NULL,
		at     INTEGER NOT NULL
	);
	CREATE INDEX artifacts_run ON artifacts(run_id);
	CREATE TABLE tags (
		run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
		tag    TEXT NOT NULL,
		PRIMARY KEY (run_id, tag)
	);`,
	// A cv run's chosen threshold rule scored on folds its thresholds were
	// not searched on, beside cv_f2's in-sample score.
	`ALTER TABLE runs ADD COLUMN heldout_f2 REAL;`,
	// The runs whose outputs a run combined (the parts of an ensemble
	// plan), so that a result can be traced to what it was made of.
	`CREATE TABLE parents (
		run_id    INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
		parent_id INTEGER NOT NULL REFERENCES runs(id),
		PRIMARY KEY (run_id, parent_id)
	);`,
}

// SchemaVersion is the schema version this binary writes.
var SchemaVersion = len(migrations)

func (db *DB) migrate(ctx context.Context) error {
	tx, err := db.sql.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var v int
	if err := tx.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
		return err
	}
	if v > len(migrations) {
		return fmt.Errorf("schema version %d is newer than this binary knows (%d); upgrade imet", v, len(migrations))
	}
	for ; v < len(migrations); v++ {
		if _, err := tx.ExecContext(ctx, migrations[v]); err != nil {
			return fmt.Errorf("migrating schema to version %d: %w", v+1, err)
		}
		if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", v+1)); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// ErrNotFound is returned when no run matches a reference.
var ErrNotFound = errors.New("no such run")

func now() int64 { return time.Now().UnixMilli() }

func fromMillis(ms int64) time.Time { return time.UnixMilli(ms).UTC() }
