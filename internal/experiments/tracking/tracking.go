// Package tracking is what a command that trains or predicts holds while it
// runs: one object that records the run in the registry and tells a person
// about it (package notify) at the same moments, so that the two can never
// disagree about how a run ended.
package tracking

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"imet/internal/base/redact"
	"imet/internal/experiments/notify"
	"imet/internal/experiments/registry"
)

// TailLines is how many log lines a failure keeps.
const TailLines = 40

// Tracker records and announces one run.
type Tracker struct {
	run    *registry.Run
	notify *notify.Notifier
	info   registry.RunInfo
	start  time.Time
	host   string
	tail   *registry.Tail
	warn   io.Writer
}

// Start records the run as running and sends the start notification.
// n may be nil for no notifications; warn receives notification delivery
// errors (they never stop a run), nil for os.Stderr.
func Start(db *registry.DB, info registry.RunInfo, n *notify.Notifier, warn io.Writer) (*Tracker, error) {
	run, err := db.Start(info)
	if err != nil {
		return nil, err
	}
	if warn == nil {
		warn = os.Stderr
	}
	host, _ := os.Hostname()
	t := &Tracker{run: run, notify: n, info: info, start: time.Now(), host: host, tail: registry.NewTail(TailLines), warn: warn}
	t.send(notify.Event{Kind: notify.Started})
	return t, nil
}

// ID returns the run's registry id.
func (t *Tracker) ID() int64 { return t.run.ID() }

// AddParents records runs whose outputs this run combines.
func (t *Tracker) AddParents(ids ...int64) error { return t.run.AddParents(ids...) }

// Input records a file the run reads and, as parents, the runs that
// wrote it; see registry.Run.Input.
func (t *Tracker) Input(path string) ([]int64, error) { return t.run.Input(path) }

// Log returns a writer keeping the last lines of the run's log for a
// failure report; tee the log into it (io.MultiWriter).
func (t *Tracker) Log() io.Writer { return t.tail }

// Metric records a metric value; see registry.Run.Metric.
func (t *Tracker) Metric(step int, epoch float64, name string, value float64) error {
	return t.run.Metric(step, epoch, name, value)
}

// Artifact records a file the run wrote; see registry.Run.Artifact.
func (t *Tracker) Artifact(kind, path string) error { return t.run.Artifact(kind, path) }

// Checkpoint records a saved checkpoint and, if configured, notifies.
func (t *Tracker) Checkpoint(epoch float64, path string) error {
	if err := t.run.Artifact("checkpoint", path); err != nil {
		return err
	}
	t.send(notify.Event{Kind: notify.Checkpoint, Epoch: epoch, Path: path})
	return nil
}

// End closes the run: finished with its summary when err is nil, failed with
// err and the log tail otherwise, and notifies accordingly. Call it on every
// exit path, typically deferred with the function's error.
func (t *Tracker) End(err error, s registry.Summary) error {
	lines := t.tail.Lines()
	rerr := t.run.End(err, s, lines)
	if err != nil {
		t.send(notify.Event{Kind: notify.Failed, Err: err, LogTail: lines})
	} else if rerr != nil {
		// Not recorded as finished: do not announce a success.
		t.send(notify.Event{Kind: notify.Failed, Err: fmt.Errorf("recording the result: %w", rerr), LogTail: lines})
	} else {
		cv := s.CVF2
		t.send(notify.Event{Kind: notify.Finished, CVF2: &cv})
	}
	return rerr
}

// Stop closes a run that stopped cleanly before completing, recording and
// announcing it as interrupted with why (reason, e.g. "time-budget",
// "SIGTERM") and the command that continues it (resume); nothing is
// announced as finished.
func (t *Tracker) Stop(reason, resume string) error {
	err := t.run.Stop(fmt.Sprintf("stopped (%s) before completing; continue with: %s", reason, resume))
	t.send(notify.Event{Kind: notify.Interrupted, Reason: reason, Resume: resume})
	return err
}

func (t *Tracker) send(e notify.Event) {
	if !t.notify.Enabled() {
		return
	}
	e.RunID, e.Run, e.Host, e.Elapsed = t.run.ID(), t.info.Name, t.host, time.Since(t.start)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := t.notify.Notify(ctx, e); err != nil {
		fmt.Fprintf(t.warn, "warning: run %d: %v\n", t.run.ID(), redact.Error(err))
	}
}
