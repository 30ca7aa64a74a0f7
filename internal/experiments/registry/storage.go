package registry

import (
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"
)

// SQLite's primary result codes that a full disk produces: SQLITE_FULL
// where SQLite itself sees the disk full, SQLITE_IOERR (with an extended
// code such as 4874, SQLITE_IOERR_SHMSIZE) where a write of the WAL or its
// shared-memory file fails first.
const (
	sqliteIOErr = 10
	sqliteFull  = 13
)

// lowSpace is the free space below which an I/O error is put down to a
// full disk.
const lowSpace = 1 << 20

// ErrNoSpace is what errors caused by a full disk wrap, so that callers
// can test for it with errors.Is.
var ErrNoSpace = errors.New("no space left on device")

// storage says "no space left on device" when a full disk is why err
// happened: SQLite reports it as "database or disk is full" or as a bare
// "disk I/O error (4874)", which does not tell a user what to do.
func (db *DB) storage(err error) error {
	if err == nil {
		return nil
	}
	var coded interface{ Code() int }
	if !errors.As(err, &coded) && !errors.Is(err, syscall.ENOSPC) {
		return err
	}
	full := errors.Is(err, syscall.ENOSPC)
	if coded != nil {
		switch coded.Code() & 0xff {
		case sqliteFull:
			full = true
		case sqliteIOErr:
			full = full || db.freeBytes() < lowSpace
		}
	}
	if !full {
		return err
	}
	return fmt.Errorf("%w on the file system of %s (%s free): %w", ErrNoSpace, db.path, formatFree(db.freeBytes()), err)
}

// freeBytes is the space left to unprivileged writers beside the
// registry file, or -1 when unknown.
func (db *DB) freeBytes() int64 {
	var st syscall.Statfs_t
	if err := syscall.Statfs(filepath.Dir(db.path), &st); err != nil {
		return -1
	}
	return int64(st.Bavail) * int64(st.Bsize)
}

func formatFree(n int64) string {
	switch {
	case n < 0:
		return "unknown"
	case n < 1<<20:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
}

// final is a run's last word: the status its end writes, with the values
// that go with it.
type final struct {
	Status  Status             `json:"status"`
	EndedAt int64              `json:"ended_at"`
	CVF2    *float64           `json:"cv_f2,omitempty"`
	HeldOut *float64           `json:"heldout_f2,omitempty"`
	GroupF2 map[string]float64 `json:"group_f2,omitempty"`
	Error   string             `json:"error,omitempty"`
	LogTail string             `json:"log_tail,omitempty"`
	Note    string             `json:"note,omitempty"`
}

// apply writes f into run id's row.
func (f *final) apply(tx *sql.Tx, id int64) error {
	var err error
	switch f.Status {
	case StatusFinished:
		_, err = tx.Exec(`UPDATE runs SET status=?, ended_at=?, cv_f2=?, heldout_f2=? WHERE id=?`,
			string(f.Status), f.EndedAt, f.CVF2, f.HeldOut, id)
		groups := make([]string, 0, len(f.GroupF2))
		for g := range f.GroupF2 {
			groups = append(groups, g)
		}
		sort.Strings(groups)
		for _, g := range groups {
			if err != nil {
				break
			}
			_, err = tx.Exec(`INSERT OR REPLACE INTO group_f2 (run_id, grp, f2) VALUES (?,?,?)`, id, g, f.GroupF2[g])
		}
	case StatusFailed:
		_, err = tx.Exec(`UPDATE runs SET status=?, ended_at=?, error=?, log_tail=? WHERE id=?`,
			string(f.Status), f.EndedAt, f.Error, f.LogTail, id)
	default:
		_, err = tx.Exec(`UPDATE runs SET status=?, ended_at=?, note=? WHERE id=?`,
			string(f.Status), f.EndedAt, f.Note, id)
	}
	return err
}

// The final status write is retried at these intervals before it is left
// in the run's lock file for the next Open (pending): a finished run must
// not be shown as interrupted because the disk was full, or the database
// busy, for a moment.
var endRetries = []time.Duration{200 * time.Millisecond, time.Second}

// lockSize is the space a lock file is given when it is created, while
// the disk still has room, so that a final status can be written into it
// in place when the disk is full.
const lockSize = 4096

// pendingPrefix starts the line of a lock file that holds a final status
// its run could not write to the database.
const pendingPrefix = "final "

// writePending keeps f in the lock file, within the space allocated when
// it was created: the log tail is shortened to fit.
func writePending(lock *os.File, pid int, f final) error {
	for {
		b, err := json.Marshal(f)
		if err != nil {
			return err
		}
		text := fmt.Sprintf("%d\n%s%s\n", pid, pendingPrefix, b)
		if len(text) <= lockSize || f.LogTail == "" && len(f.Error) < 256 {
			if len(text) < lockSize {
				text += strings.Repeat(" ", lockSize-len(text))
			}
			if _, err := lock.WriteAt([]byte(text), 0); err != nil {
				return err
			}
			return lock.Sync()
		}
		// Too long: keep the error's start and the log's end.
		if f.LogTail != "" {
			f.LogTail = f.LogTail[len(f.LogTail)/2:]
			if len(f.LogTail) < 64 {
				f.LogTail = ""
			}
		} else {
			f.Error = f.Error[:len(f.Error)/2]
		}
	}
}

// readPending is the final status a dead run left in its lock file.
func readPending(path string) (final, bool) {
	data, err := os.ReadFile(path)
	if err != nil {
		return final{}, false
	}
	for _, l := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(l, pendingPrefix); ok {
			var f final
			if json.Unmarshal([]byte(v), &f) == nil && f.Status != "" {
				return f, true
			}
		}
	}
	return final{}, false
}
