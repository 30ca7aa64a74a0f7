package registry

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"imet/internal/base/redact"
)

// Kind says which command produced a run.
type Kind string

// The kinds of run the toolkit records.
const (
	KindTrain      Kind = "train"
	KindCV         Kind = "cv"
	KindPredict    Kind = "predict"
	KindThresholds Kind = "thresholds"
	// KindPlan is imet cv --plan: several cross-validations (its parents)
	// ensembled.
	KindPlan Kind = "plan"
)

// Status is where a run stands.
type Status string

// A run is StatusRunning until it finishes or fails; a process that died
// without saying so is found StatusInterrupted by the next Open or List.
const (
	StatusRunning     Status = "running"
	StatusFinished    Status = "finished"
	StatusFailed      Status = "failed"
	StatusInterrupted Status = "interrupted"
)

// RunInfo describes a run as it starts.
type RunInfo struct {
	Name string // human name, e.g. "resnet50-fold0"; need not be unique
	Kind Kind
	// Args is the command line, normally os.Args.
	Args []string
	// Config is the fully resolved configuration (YAML), defaults included.
	// It is stored through redact.Config (values under keys that look like
	// secrets, URL keys and registered secrets masked), as every text field
	// of a run is stored through package redact.
	Config string
	// DataFingerprint identifies the training data; see Fingerprint.
	DataFingerprint string
	// ResumedFrom is the id of the run this one continues, 0 if none.
	ResumedFrom int64
}

// Summary is what a finished run reports.
type Summary struct {
	CVF2 float64 // F2 over the validation folds
	// HeldOutF2 is, for a cv run, the F2 of the threshold rule it chose
	// with thresholds searched on the other folds (CVF2 is then the score
	// with thresholds searched on every fold); nil when not measured.
	HeldOutF2 *float64
	GroupF2   map[string]float64 // F2 per label group, e.g. "culture", "tag"
}

// Run is a run in progress, owned by the process that started it.
type Run struct {
	db   *DB
	id   int64
	mu   sync.Mutex
	lock *os.File // held (flock) while the run lives
	done bool
}

// ID returns the run's id in the registry.
func (r *Run) ID() int64 { return r.id }

// Start records a new run as running, along with the code version, machine
// and process that run it.
func (db *DB) Start(info RunInfo) (*Run, error) {
	if info.Name == "" {
		return nil, errors.New("registry: a run needs a name")
	}
	switch info.Kind {
	case KindTrain, KindCV, KindPredict, KindThresholds, KindPlan:
	default:
		return nil, fmt.Errorf("registry: unknown run kind %q", info.Kind)
	}
	// The lock is taken before the row exists, so no other process can see
	// a running run whose lock is not yet held and call it interrupted.
	lock, err := db.newLock()
	if err != nil {
		return nil, err
	}
	args, _ := json.Marshal(redact.Strings(info.Args))
	code := CodeVersion()
	var resumed any
	if info.ResumedFrom != 0 {
		resumed = info.ResumedFrom
	}
	res, err := db.sql.Exec(`INSERT INTO runs (name, kind, args, config, code_version, code_dirty,
		data_fingerprint, host, machine, pid, lock_path, started_at, status, resumed_from)
		VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)`,
		redact.String(info.Name), string(info.Kind), string(args), redact.Config(info.Config), code.Revision, code.Dirty,
		info.DataFingerprint, db.hostname, machine(), os.Getpid(), lock.Name(), now(), string(StatusRunning), resumed)
	if err != nil {
		releaseLock(lock)
		return nil, fmt.Errorf("registry: recording run %q: %w", info.Name, db.storage(err))
	}
	id, err := res.LastInsertId()
	if err != nil {
		releaseLock(lock)
		return nil, err
	}
	return &Run{db: db, id: id, lock: lock}, nil
}

func (db *DB) newLock() (*os.File, error) {
	if err := os.MkdirAll(db.lockDir, 0o755); err != nil {
		return nil, fmt.Errorf("registry: %w", err)
	}
	var b [8]byte
	rand.Read(b[:])
	path := filepath.Join(db.lockDir, hex.EncodeToString(b[:])+".lock")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR|os.O_EXCL, 0o644)
	if err != nil {
		return nil, fmt.Errorf("registry: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		os.Remove(path)
		return nil, fmt.Errorf("registry: locking %s: %w", path, err)
	}
	// The whole lockSize is written, not truncated to (a sparse file has
	// no blocks), so that a final status fits later on a full disk.
	line := fmt.Sprintf("%d\n", os.Getpid())
	if _, err := f.WriteString(line + strings.Repeat(" ", lockSize-len(line))); err != nil {
		releaseLock(f)
		return nil, fmt.Errorf("registry: %s: %w", path, err)
	}
	return f, nil
}

func releaseLock(f *os.File) {
	os.Remove(f.Name())
	f.Close() // closing the last descriptor drops the flock
}

func machine() string {
	host, _ := os.Hostname()
	return fmt.Sprintf("%s %s/%s %d CPU", host, runtime.GOOS, runtime.GOARCH, runtime.NumCPU())
}

// Metric records one value of a named metric, e.g. "train_loss", "val_f2" or
// "lr", at a training step. epoch may be fractional for per-step values.
func (r *Run) Metric(step int, epoch float64, name string, value float64) error {
	_, err := r.db.sql.Exec(`INSERT INTO metrics (run_id, step, epoch, name, value, at) VALUES (?,?,?,?,?,?)`,
		r.id, step, epoch, name, value, now())
	if err != nil {
		return fmt.Errorf("registry: run %d metric %s: %w", r.id, name, r.db.storage(err))
	}
	return nil
}

// Artifact records a file the run wrote (kind e.g. "checkpoint",
// "probabilities", "submission") with its SHA-256, read from disk now so
// that a later overwrite is detectable.
func (r *Run) Artifact(kind, path string) error {
	sum, size, err := HashFile(path)
	if err != nil {
		return fmt.Errorf("registry: run %d artifact: %w", r.id, err)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		abs = path
	}
	_, err = r.db.sql.Exec(`INSERT INTO artifacts (run_id, kind, path, sha256, size, at) VALUES (?,?,?,?,?,?)`,
		r.id, kind, abs, sum, size, now())
	if err != nil {
		return fmt.Errorf("registry: run %d artifact %s: %w", r.id, path, r.db.storage(err))
	}
	return nil
}

// AddParents records runs whose outputs this run combines.
func (r *Run) AddParents(ids ...int64) error {
	for _, id := range ids {
		if _, err := r.db.sql.Exec(`INSERT OR IGNORE INTO parents (run_id, parent_id) VALUES (?,?)`, r.id, id); err != nil {
			return fmt.Errorf("registry: run %d parent %d: %w", r.id, id, r.db.storage(err))
		}
	}
	return nil
}

// HashFile returns the hex SHA-256 of a file's contents and its size.
func HashFile(path string) (string, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", 0, fmt.Errorf("%s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// Finish marks the run finished with its summary and releases its lock.
// Ending a run twice is an error: the first word stands.
func (r *Run) Finish(s Summary) error {
	cv := s.CVF2
	return r.end(final{Status: StatusFinished, EndedAt: now(), CVF2: &cv, HeldOut: s.HeldOutF2, GroupF2: s.GroupF2})
}

// Fail marks the run failed with the error and the last lines of its log,
// and releases its lock. A nil err is still recorded as a failure.
func (r *Run) Fail(err error, lastLogLines []string) error {
	msg := "failed without an error message"
	if err != nil {
		msg = err.Error()
	}
	return r.end(final{Status: StatusFailed, EndedAt: now(), Error: redact.String(msg),
		LogTail: redact.String(strings.Join(lastLogLines, "\n"))})
}

// Stop marks a run that ended cleanly before completing (a spent time
// budget, a signal) as interrupted, with a note saying how to continue it:
// neither finished nor failed, and resumable.
func (r *Run) Stop(note string) error {
	return r.end(final{Status: StatusInterrupted, EndedAt: now(), Note: redact.String(note)})
}

// End finishes the run when err is nil and fails it otherwise, so that a
// trainer's single exit path cannot report a failure as success:
//
//	defer func() { run.End(err, summary, tail.Lines()) }()
func (r *Run) End(err error, s Summary, lastLogLines []string) error {
	if err != nil {
		return r.Fail(err, lastLogLines)
	}
	return r.Finish(s)
}

// end writes the run's final status, retrying (endRetries) when the
// database refuses it. When every try fails the status is kept in the
// run's lock file, whose space was allocated when the run started, and
// the next Open or List applies it (Reconcile), so a run that finished is
// never shown as interrupted because the disk was full at its end.
func (r *Run) end(f final) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.done {
		return fmt.Errorf("registry: run %d already ended", r.id)
	}
	err := r.write(f)
	for _, wait := range endRetries {
		if err == nil {
			break
		}
		time.Sleep(wait)
		err = r.write(f)
	}
	if err != nil {
		err = fmt.Errorf("registry: run %d: %w", r.id, r.db.storage(err))
		if perr := writePending(r.lock, os.Getpid(), f); perr != nil {
			return fmt.Errorf("%w (nor could it be kept in %s: %v)", err, r.lock.Name(), perr)
		}
		r.done = true
		r.lock.Close() // the file stays, holding the status
		return fmt.Errorf("%w; the %s status is kept in %s and recorded by the next command that opens the registry", err, f.Status, r.lock.Name())
	}
	r.done = true
	releaseLock(r.lock)
	return nil
}

// write is one try of the final status's transaction.
func (r *Run) write(f final) error {
	tx, err := r.db.sql.Begin()
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := f.apply(tx, r.id); err != nil {
		return err
	}
	return tx.Commit()
}

// Input records a file the run reads that an earlier run may have written
// (a teacher's probabilities, a cleaned train.csv): an "input" artifact,
// and every run that recorded the same contents as a parent. It returns
// those parents.
func (r *Run) Input(path string) ([]int64, error) {
	ids, err := r.db.Producers(path, r.id)
	if err != nil {
		return nil, err
	}
	if err := r.Artifact("input", path); err != nil {
		return nil, err
	}
	return ids, r.AddParents(ids...)
}
