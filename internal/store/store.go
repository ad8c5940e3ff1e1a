// Package store keeps logjail's state in one SQLite database (modernc.org/sqlite,
// pure Go): the bans in force, the history of every ban, and per log file the
// read position with a fingerprint of the file's head.
//
// # Connections
//
// A Store holds two connection pools on the same file. The writer pool has
// exactly one connection, and only the writer goroutine uses it: every change
// goes through one queue, in order. SQLite admits one writer at a time anyway;
// serialising in Go costs a mutex, where several writing connections would
// contend on file locks (SQLITE_BUSY, sleeps and retries, and a deferred
// transaction that cannot upgrade to a write lock fails at once). One writing
// connection is also the only connection that ever checkpoints the WAL, which
// keeps the store out of the window of SQLite's WAL-reset bug (versions 3.7.0
// to 3.51.2; it needs two connections writing or checkpointing at the same
// time). The reader pool opens the file read-only (mode=ro), so reads run
// beside the writer (WAL readers never block the writer or each other) and a
// reader can neither write nor checkpoint.
//
// # Writes, batches and the crash contract
//
// Writes are queued and committed by one goroutine in group commits: it takes
// everything queued (up to Options.MaxBatch) into one transaction. While a
// commit runs, new writes queue up, so the batch grows with the load: a ban
// storm costs one commit (and with SyncFull one fsync) per batch, not per ban,
// and a lone ban is committed at once, without waiting for a timer.
//
// The guarantee after a crash: writes are applied in the order they were
// queued, and each batch is one transaction, so the database always holds a
// prefix of the queued writes — everything up to some write, nothing after
// it, never a write without the ones queued before it. A write whose
// completion was reported (the synchronous methods returned nil, or the done
// callback of an ...Async method was called with nil) is in that prefix after
// the process is killed (SIGKILL, OOM kill, panic): it is in the WAL, which
// the kernel holds even if the process dies. With SyncNormal (the default) a
// power loss or kernel crash may lose the last commits, those the kernel had
// not yet written back (Linux writes dirty pages back within about 30 s; the
// WAL is also fsynced at every checkpoint): the file still holds a prefix of
// the writes and is never corrupt (WAL frames carry chained checksums; a torn
// tail is dropped at the next open). With SyncFull every commit is fsynced
// before it is reported, so a reported write also survives power loss.
//
// SyncNormal is the default because the crash that matters here is the
// process's (the SIGKILL in a ban storm), where both modes keep every
// reported write, while SyncFull puts an fsync between every lone ban and its
// firewall rule (store first, below). After a power loss the kernel's rules
// are gone too; what SyncNormal may forget is bans of the last seconds (the
// attacker must fail maxretry times again) or, rarer, an unban of the last
// seconds (the ban returns until its End). SyncFull is there for those who
// want neither.
//
// The daemon's side of the contract (proposed for internal/ban): the store is
// the intent log and the kernel follows it. A ban is applied to the kernel
// only after its PutBan has been reported committed; an unban is recorded with
// EndBan first and the rule removed after. At start the daemon reconciles the
// kernel with ActiveBans: a rule without a ban in force is removed, a ban in
// force without a rule is applied, a ban whose End has passed is ended and
// its rule removed. Because no rule ever exists without a committed row, a
// rule without a row can only be a ban being lifted, so removing it is always
// right, and after any crash the kernel ends up with exactly the bans the
// database says are in force.
//
// # Corruption
//
// Open checks the file (SQLite header, application ID, schema version, PRAGMA
// quick_check). A file that is not a logjail database, fails the check or has
// a schema newer than this build knows is renamed to path+".corrupt-<unix
// time>" (its -wal beside it) with a Warn log, and an empty database is
// created. Errors that say nothing about the file itself (locked, disk full,
// I/O errors, a directory at the path) are returned instead: a healthy
// database is never moved aside.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/logjail/logjail/internal/clock"
	_ "modernc.org/sqlite" // database/sql driver "sqlite"
)

// Sync chooses how hard a commit is pushed to disk (PRAGMA synchronous).
type Sync int

const (
	// SyncNormal (PRAGMA synchronous=NORMAL) does not fsync a commit; the WAL
	// is fsynced at checkpoints. A committed write survives the death of the
	// process; power loss may lose the last commits, never corrupts.
	SyncNormal Sync = iota
	// SyncFull (PRAGMA synchronous=FULL) fsyncs the WAL at every commit
	// (batch), so a reported write also survives power loss.
	SyncFull
)

func (s Sync) pragma() string {
	if s == SyncFull {
		return "FULL"
	}
	return "NORMAL"
}

// Defaults.
const (
	DefaultMaxBatch    = 1000
	DefaultBusyTimeout = 5 * time.Second
	readerConns        = 4
	applicationID      = 0x4c4a4442 // "LJDB"
)

// Options configure a Store. The zero value is usable.
type Options struct {
	Logger *slog.Logger // nil: discard
	Clock  clock.Clock  // nil: clock.Real(); names moved-aside files, dates EndBan with a zero time
	Sync   Sync         // default SyncNormal
	// MaxBatch caps the writes in one transaction (default DefaultMaxBatch).
	MaxBatch int
	// BusyTimeout is how long a statement waits for a lock held by another
	// process, such as a report reading the file (default DefaultBusyTimeout).
	BusyTimeout time.Duration
	// FullCheck runs PRAGMA integrity_check at Open instead of quick_check:
	// it also checks that every index matches its table, at several times
	// the cost.
	FullCheck bool
}

// Errors.
var (
	ErrClosed   = errors.New("store closed")
	ErrReadOnly = errors.New("store opened read-only")
	ErrInvalid  = errors.New("invalid argument")
	// ErrSchema: OpenReadOnly found a schema version it cannot read without
	// a migration (older: start the daemon once) or at all (newer).
	ErrSchema = errors.New("database schema version mismatch")
	// ErrUnusable wraps the reason a database is moved aside (OpenReadOnly
	// returns it instead).
	ErrUnusable = errors.New("database unusable")
)

// Store is the SQLite state of the daemon. Its methods are safe for
// concurrent use.
type Store struct {
	path string
	log  *slog.Logger
	clk  clock.Clock
	opts Options

	rdb *sql.DB // read-only pool
	wdb *sql.DB // the writer: one connection; nil when read-only
	w   *writer
	st  stmts

	closeOnce sync.Once
	closeErr  error
}

// Open opens the database at path, creating the directory (0700) and the
// file (0600) when missing, and migrating its schema to the current version.
// A corrupt or foreign file is moved aside (see the package doc) and an empty
// database takes its place.
func Open(path string, o Options) (*Store, error) {
	return open(path, o, migrations)
}

func open(path string, o Options, migs []migration) (*Store, error) {
	o = o.withDefaults()
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("store path %q: %w", path, err)
	}
	if err := os.MkdirAll(filepath.Dir(abs), 0o700); err != nil {
		return nil, fmt.Errorf("create state directory: %w", err)
	}
	s, err := tryOpen(abs, o, migs)
	if err == nil {
		return s, nil
	}
	if !errors.Is(err, ErrUnusable) {
		return nil, err
	}
	moved, merr := moveAside(abs, o.Clock.Now())
	if merr != nil {
		return nil, fmt.Errorf("%w; moving it aside failed: %w", err, merr)
	}
	o.Logger.Error("database unusable, moved aside; starting with an empty database: the bans in force and the history in it are not used",
		"path", abs, "moved_to", moved, "reason", err.Error())
	s, err = tryOpen(abs, o, migs)
	if err != nil {
		return nil, fmt.Errorf("open fresh database: %w", err)
	}
	return s, nil
}

// OpenReadOnly opens an existing database for reading only, as `logjail
// report` does (with the daemon running or not). It never creates, migrates
// or moves anything: a missing file, a corrupt one or another schema version
// is an error. The write methods return ErrReadOnly.
func OpenReadOnly(path string, o Options) (*Store, error) {
	o = o.withDefaults()
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("store path %q: %w", path, err)
	}
	// No checkHeader here: the daemon may have the file open in this very
	// process (tests), and closing our own descriptor of it would drop
	// SQLite's POSIX locks. SQLite reports a non-database as NOTADB.
	if _, err := os.Stat(abs); err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	s := &Store{path: abs, log: o.Logger, clk: o.Clock, opts: o}
	if s.rdb, err = sql.Open("sqlite", dsn(abs, o, true)); err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	s.rdb.SetMaxOpenConns(readerConns)
	ctx := context.Background()
	var appID, version int
	err = s.rdb.QueryRowContext(ctx, "PRAGMA application_id").Scan(&appID)
	if err == nil {
		err = s.rdb.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version)
	}
	if err != nil {
		s.rdb.Close()
		return nil, fmt.Errorf("read database: %w", classify(err))
	}
	if appID != applicationID {
		s.rdb.Close()
		return nil, fmt.Errorf("%w: not a logjail database (application_id %#x)", ErrUnusable, appID)
	}
	if version != len(migrations) {
		s.rdb.Close()
		return nil, fmt.Errorf("%w: file has version %d, this logjail uses %d (an older file is upgraded by the daemon)",
			ErrSchema, version, len(migrations))
	}
	return s, nil
}

func (o Options) withDefaults() Options {
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.Clock == nil {
		o.Clock = clock.Real()
	}
	if o.MaxBatch <= 0 {
		o.MaxBatch = DefaultMaxBatch
	}
	if o.BusyTimeout <= 0 {
		o.BusyTimeout = DefaultBusyTimeout
	}
	return o
}

// dsn builds a file: URI, so that SQLite sees mode=ro and the path is
// escaped (a plain file name would have its query cut off by the driver).
func dsn(path string, o Options, readOnly bool) string {
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", o.BusyTimeout.Milliseconds()))
	q.Add("_pragma", "foreign_keys(1)")
	if readOnly {
		q.Set("mode", "ro")
		q.Add("_pragma", "query_only(1)")
	} else {
		q.Add("_pragma", "synchronous("+o.Sync.pragma()+")")
		q.Set("_txlock", "immediate")
	}
	u := url.URL{Scheme: "file", OmitHost: true, Path: path, RawQuery: q.Encode()}
	return u.String()
}

// tryOpen opens, checks and migrates the database at path. An error wrapping
// ErrUnusable means the file itself is bad and should be moved aside.
func tryOpen(path string, o Options, migs []migration) (*Store, error) {
	if err := prepareFile(path, o.Clock.Now(), o.Logger); err != nil {
		return nil, err
	}
	s := &Store{path: path, log: o.Logger, clk: o.Clock, opts: o}
	var err error
	if s.wdb, err = sql.Open("sqlite", dsn(path, o, false)); err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	// One connection, kept for the life of the Store: see the package doc.
	s.wdb.SetMaxOpenConns(1)
	s.wdb.SetMaxIdleConns(1)
	s.wdb.SetConnMaxLifetime(0)
	s.wdb.SetConnMaxIdleTime(0)
	fail := func(err error) (*Store, error) {
		s.st.close()
		s.wdb.Close()
		if s.rdb != nil {
			s.rdb.Close()
		}
		return nil, err
	}
	if err := s.check(migs); err != nil {
		return fail(err)
	}
	// WAL mode is a property of the file, set once it is known to be ours
	// (never on a foreign file that is about to be moved aside).
	var mode string
	if err := s.wdb.QueryRow("PRAGMA journal_mode = WAL").Scan(&mode); err != nil {
		return fail(fmt.Errorf("set WAL mode: %w", classify(err)))
	}
	if mode != "wal" {
		return fail(fmt.Errorf("set WAL mode: journal mode is still %q", mode))
	}
	if err := migrate(s.wdb, migs, o.Logger); err != nil {
		return fail(classify(err))
	}
	if s.rdb, err = sql.Open("sqlite", dsn(path, o, true)); err != nil {
		return fail(fmt.Errorf("open database: %w", err))
	}
	s.rdb.SetMaxOpenConns(readerConns)
	// Each connection keeps its page cache (up to 2 MiB): idle readers go.
	s.rdb.SetMaxIdleConns(1)
	s.rdb.SetConnMaxIdleTime(time.Minute)
	if err := s.rdb.PingContext(context.Background()); err != nil {
		return fail(fmt.Errorf("open reader: %w", err))
	}
	if err := s.st.prepare(s.wdb); err != nil {
		return fail(classify(err))
	}
	s.w = newWriter(s)
	go s.w.run()
	return s, nil
}

// Path returns the absolute path of the database file.
func (s *Store) Path() string { return s.path }

// Close commits every queued write, checkpoints the WAL into the database
// file (so the -wal file is empty) and closes the database. Writes after
// Close fail with ErrClosed. Close is idempotent.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		var errs []error
		if s.w != nil {
			s.w.close()
			if err := s.w.takeErr(); err != nil {
				errs = append(errs, err)
			}
		}
		// Readers first, so that the writer is the last connection: it is
		// the one that checkpoints and removes the WAL.
		if err := s.rdb.Close(); err != nil {
			errs = append(errs, err)
		}
		if s.wdb != nil {
			s.st.close()
			// A reader of another process (a report) can keep the WAL from
			// being emptied: that is no error, the next Open replays it.
			if _, err := s.wdb.Exec("PRAGMA wal_checkpoint(TRUNCATE)"); err != nil && !isBusy(err) {
				errs = append(errs, fmt.Errorf("checkpoint: %w", err))
			}
			if err := s.wdb.Close(); err != nil {
				errs = append(errs, err)
			}
		}
		s.closeErr = errors.Join(errs...)
	})
	return s.closeErr
}

// checkpoint copies the WAL into the database file and truncates it. It runs
// on the writer connection (MaxOpenConns 1), so it waits for the batch being
// committed; only that connection ever checkpoints (see the package doc).
func (s *Store) checkpoint() error {
	if s.wdb == nil {
		return ErrReadOnly
	}
	_, err := s.wdb.Exec("PRAGMA wal_checkpoint(TRUNCATE)")
	return err
}
