package registry

import (
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"imet/internal/base/redact"
)

// Record is a run as stored in the registry.
type Record struct {
	ID              int64
	Name            string
	Kind            Kind
	Args            []string
	Config          string // resolved YAML, secrets redacted
	CodeVersion     string // the binary's revision (see CodeVersion), "unknown" when it carries none
	CodeDirty       bool   // the code had uncommitted changes
	DataFingerprint string
	Host            string
	Machine         string
	PID             int
	StartedAt       time.Time
	EndedAt         time.Time // zero while running
	Status          Status
	Error           string  // why it failed
	LogTail         string  // last log lines at failure
	ResumedFrom     int64   // 0 if none
	Parents         []int64 // runs whose outputs this one combined, in id order
	CVF2            *float64
	HeldOutF2       *float64 // cv runs: the chosen threshold rule's held-out F2
	LB              *float64 // leaderboard score, entered by hand
	Note            string
	Tags            []string
	GroupF2         map[string]float64
}

// Duration is how long the run ran, or has run so far.
func (r *Record) Duration() time.Duration {
	end := r.EndedAt
	if end.IsZero() {
		end = time.Now()
	}
	return end.Sub(r.StartedAt).Round(time.Second)
}

// Metric is one recorded value.
type Metric struct {
	Step  int
	Epoch float64
	Name  string
	Value float64
	At    time.Time
}

// Artifact is a recorded file.
type Artifact struct {
	Kind   string
	Path   string
	SHA256 string
	Size   int64
	At     time.Time
}

// Reconcile marks as interrupted every run recorded as running on this
// machine whose process no longer holds its lock, and returns their ids.
// Runs started on other machines are left alone: their locks cannot be
// tested from here.
func (db *DB) Reconcile() ([]int64, error) {
	rows, err := db.sql.Query(`SELECT id, lock_path FROM runs WHERE status=? AND host=?`, string(StatusRunning), db.hostname)
	if err != nil {
		return nil, err
	}
	type cand struct {
		id   int64
		lock string
	}
	var cands []cand
	for rows.Next() {
		var c cand
		if err := rows.Scan(&c.id, &c.lock); err != nil {
			rows.Close()
			return nil, err
		}
		cands = append(cands, c)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	var dead []int64
	for _, c := range cands {
		if lockHeld(c.lock) {
			continue
		}
		// A run that could not write its end left it in its lock file.
		if f, ok := readPending(c.lock); ok {
			if err := db.applyPending(c.id, f); err != nil {
				return dead, err
			}
			os.Remove(c.lock)
			continue
		}
		// The last sign of life is the best estimate of when it died.
		res, err := db.sql.Exec(`UPDATE runs SET status=?, ended_at=MAX(started_at,
				COALESCE((SELECT MAX(at) FROM metrics WHERE run_id=runs.id), 0),
				COALESCE((SELECT MAX(at) FROM artifacts WHERE run_id=runs.id), 0)),
			error=CASE WHEN error='' THEN 'process ended without finishing (killed or crashed)' ELSE error END
			WHERE id=? AND status=?`, string(StatusInterrupted), c.id, string(StatusRunning))
		if err != nil {
			return dead, err
		}
		if n, _ := res.RowsAffected(); n > 0 {
			dead = append(dead, c.id)
			os.Remove(c.lock)
		}
	}
	return dead, nil
}

// applyPending writes the final status a run left in its lock file.
func (db *DB) applyPending(id int64, f final) error {
	tx, err := db.sql.Begin()
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var status string
	if err := tx.QueryRow(`SELECT status FROM runs WHERE id=?`, id).Scan(&status); err != nil {
		return err
	}
	if status != string(StatusRunning) {
		return nil // recorded meanwhile
	}
	if err := f.apply(tx, id); err != nil {
		return err
	}
	return tx.Commit()
}

// lockHeld reports whether some live process holds the flock on path.
func lockHeld(path string) bool {
	if path == "" {
		return false
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return false // the file goes away only when its run has ended
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		return errors.Is(err, syscall.EWOULDBLOCK)
	}
	syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	return false
}

// Filter selects runs for List. Zero fields match everything.
type Filter struct {
	Kind   Kind
	Status Status
	Tag    string
	Limit  int // 0 for no limit
}

const recordCols = `id, name, kind, args, config, code_version, code_dirty, data_fingerprint, host, machine,
	pid, started_at, ended_at, status, error, log_tail, resumed_from, cv_f2, heldout_f2, lb, note`

// List returns runs, newest first, after marking dead ones interrupted.
func (db *DB) List(f Filter) ([]*Record, error) {
	if _, err := db.Reconcile(); err != nil {
		return nil, err
	}
	q := `SELECT ` + recordCols + ` FROM runs WHERE 1=1`
	var args []any
	if f.Kind != "" {
		q += ` AND kind=?`
		args = append(args, string(f.Kind))
	}
	if f.Status != "" {
		q += ` AND status=?`
		args = append(args, string(f.Status))
	}
	if f.Tag != "" {
		q += ` AND id IN (SELECT run_id FROM tags WHERE tag=?)`
		args = append(args, f.Tag)
	}
	q += ` ORDER BY id DESC`
	if f.Limit > 0 {
		q += ` LIMIT ` + strconv.Itoa(f.Limit)
	}
	rows, err := db.sql.Query(q, args...)
	if err != nil {
		return nil, err
	}
	var out []*Record
	for rows.Next() {
		r, err := scanRecord(rows)
		if err != nil {
			rows.Close()
			return nil, err
		}
		out = append(out, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for _, r := range out {
		if err := db.fill(r); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Get returns one run by id.
func (db *DB) Get(id int64) (*Record, error) {
	if _, err := db.Reconcile(); err != nil {
		return nil, err
	}
	r, err := scanRecord(db.sql.QueryRow(`SELECT `+recordCols+` FROM runs WHERE id=?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("run %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	return r, db.fill(r)
}

// Resolve turns a reference typed by a user into a run id: a number is an
// id, anything else names the newest run of that name.
func (db *DB) Resolve(ref string) (int64, error) {
	if id, err := strconv.ParseInt(ref, 10, 64); err == nil {
		var n int
		if err := db.sql.QueryRow(`SELECT COUNT(*) FROM runs WHERE id=?`, id).Scan(&n); err != nil {
			return 0, err
		}
		if n == 0 {
			return 0, fmt.Errorf("run %q: %w", ref, ErrNotFound)
		}
		return id, nil
	}
	var id int64
	err := db.sql.QueryRow(`SELECT id FROM runs WHERE name=? ORDER BY id DESC LIMIT 1`, ref).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("run %q: %w", ref, ErrNotFound)
	}
	return id, err
}

type scanner interface{ Scan(dest ...any) error }

func scanRecord(s scanner) (*Record, error) {
	var (
		r       Record
		args    string
		kind    string
		status  string
		ended   sql.NullInt64
		resumed sql.NullInt64
		cv, ho  sql.NullFloat64
		lb      sql.NullFloat64
		started int64
	)
	err := s.Scan(&r.ID, &r.Name, &kind, &args, &r.Config, &r.CodeVersion, &r.CodeDirty, &r.DataFingerprint,
		&r.Host, &r.Machine, &r.PID, &started, &ended, &status, &r.Error, &r.LogTail, &resumed, &cv, &ho, &lb, &r.Note)
	if err != nil {
		return nil, err
	}
	r.Kind, r.Status = Kind(kind), Status(status)
	json.Unmarshal([]byte(args), &r.Args)
	r.StartedAt = fromMillis(started)
	if ended.Valid {
		r.EndedAt = fromMillis(ended.Int64)
	}
	r.ResumedFrom = resumed.Int64
	if cv.Valid {
		v := cv.Float64
		r.CVF2 = &v
	}
	if ho.Valid {
		v := ho.Float64
		r.HeldOutF2 = &v
	}
	if lb.Valid {
		v := lb.Float64
		r.LB = &v
	}
	return &r, nil
}

func (db *DB) fill(r *Record) error {
	rows, err := db.sql.Query(`SELECT tag FROM tags WHERE run_id=? ORDER BY tag`, r.ID)
	if err != nil {
		return err
	}
	for rows.Next() {
		var t string
		rows.Scan(&t)
		r.Tags = append(r.Tags, t)
	}
	rows.Close()
	rows, err = db.sql.Query(`SELECT parent_id FROM parents WHERE run_id=? ORDER BY parent_id`, r.ID)
	if err != nil {
		return err
	}
	for rows.Next() {
		var id int64
		rows.Scan(&id)
		r.Parents = append(r.Parents, id)
	}
	rows.Close()
	rows, err = db.sql.Query(`SELECT grp, f2 FROM group_f2 WHERE run_id=?`, r.ID)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var g string
		var v float64
		rows.Scan(&g, &v)
		if r.GroupF2 == nil {
			r.GroupF2 = map[string]float64{}
		}
		r.GroupF2[g] = v
	}
	return rows.Err()
}

// Metrics returns a run's metrics grouped by name, each in step order.
func (db *DB) Metrics(id int64) (map[string][]Metric, error) {
	rows, err := db.sql.Query(`SELECT step, epoch, name, value, at FROM metrics WHERE run_id=? ORDER BY name, step, rowid`, id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string][]Metric{}
	for rows.Next() {
		var m Metric
		var at int64
		if err := rows.Scan(&m.Step, &m.Epoch, &m.Name, &m.Value, &at); err != nil {
			return nil, err
		}
		m.At = fromMillis(at)
		out[m.Name] = append(out[m.Name], m)
	}
	return out, rows.Err()
}

// MetricNames returns the sorted names of a metrics map.
func MetricNames(m map[string][]Metric) []string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Artifacts returns the files a run recorded, oldest first.
func (db *DB) Artifacts(id int64) ([]Artifact, error) {
	rows, err := db.sql.Query(`SELECT kind, path, sha256, size, at FROM artifacts WHERE run_id=? ORDER BY rowid`, id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Artifact
	for rows.Next() {
		var a Artifact
		var at int64
		if err := rows.Scan(&a.Kind, &a.Path, &a.SHA256, &a.Size, &at); err != nil {
			return nil, err
		}
		a.At = fromMillis(at)
		out = append(out, a)
	}
	return out, rows.Err()
}

// Tag adds tags to a run.
func (db *DB) Tag(id int64, tags ...string) error {
	for _, t := range tags {
		t = strings.TrimSpace(t)
		if t == "" {
			return errors.New("registry: empty tag")
		}
		if _, err := db.sql.Exec(`INSERT OR IGNORE INTO tags (run_id, tag) VALUES (?,?)`, id, t); err != nil {
			return fmt.Errorf("registry: tagging run %d: %w", id, err)
		}
	}
	return nil
}

// Untag removes tags from a run.
func (db *DB) Untag(id int64, tags ...string) error {
	for _, t := range tags {
		if _, err := db.sql.Exec(`DELETE FROM tags WHERE run_id=? AND tag=?`, id, t); err != nil {
			return fmt.Errorf("registry: untagging run %d: %w", id, err)
		}
	}
	return nil
}

// SetLB records the public leaderboard score of a run's submission, which no
// API reports back, so it is entered by hand.
func (db *DB) SetLB(id int64, score float64) error {
	res, err := db.sql.Exec(`UPDATE runs SET lb=? WHERE id=?`, score, id)
	if err != nil {
		return fmt.Errorf("registry: run %d: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("run %d: %w", id, ErrNotFound)
	}
	return nil
}

// SetNote replaces a run's free-text note (through redact.String, as every
// text a run stores).
func (db *DB) SetNote(id int64, note string) error {
	_, err := db.sql.Exec(`UPDATE runs SET note=? WHERE id=?`, redact.String(note), id)
	return err
}

// Producers returns the runs (other than except) that recorded an artifact
// with the file's current contents, in id order: the parents of a run that
// reads it.
func (db *DB) Producers(path string, except int64) ([]int64, error) {
	sum, _, err := HashFile(path)
	if err != nil {
		return nil, fmt.Errorf("registry: %w", err)
	}
	rows, err := db.sql.Query(`SELECT DISTINCT run_id FROM artifacts WHERE sha256=? AND run_id<>? AND kind<>'input' ORDER BY run_id`, sum, except)
	if err != nil {
		return nil, fmt.Errorf("registry: %w", db.storage(err))
	}
	defer rows.Close()
	var out []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		out = append(out, id)
	}
	return out, rows.Err()
}
