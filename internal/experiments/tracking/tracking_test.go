package tracking

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"imet/internal/experiments/notify"
	"imet/internal/experiments/registry"
)

type recorder struct {
	mu   sync.Mutex
	msgs []string
	fail bool
}

func (r *recorder) Name() string { return "recorder" }
func (r *recorder) Send(_ context.Context, text string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, text)
	if r.fail {
		return errors.New("service down")
	}
	return nil
}

func TestTracker(t *testing.T) {
	for _, tc := range []struct {
		name       string
		err        error
		status     registry.Status
		lastWant   []string
		lastBanned string
	}{
		{"finished", nil, registry.StatusFinished, []string{"finished", "CV F2 0.6100"}, "FAILED"},
		{"failed", errors.New("NaN loss at step 3"), registry.StatusFailed, []string{"FAILED", "NaN loss", "step 3 loss NaN"}, "finished"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db, err := registry.Open(filepath.Join(t.TempDir(), "r.db"))
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			rec := &recorder{}
			cfg := notify.DefaultConfig()
			cfg.OnCheckpoint = true
			tr, err := Start(db, registry.RunInfo{Name: "r50", Kind: registry.KindTrain}, notify.NewWith(cfg, rec), nil)
			if err != nil {
				t.Fatal(err)
			}
			for s := 1; s <= 3; s++ {
				tr.Metric(s, float64(s), "train_loss", 1/float64(s))
				fmt.Fprintf(tr.Log(), "step %d loss %v\n", s, map[bool]string{true: "NaN", false: "ok"}[s == 3])
			}
			ck := filepath.Join(t.TempDir(), "ck.pt")
			os.WriteFile(ck, []byte("w"), 0o644)
			if err := tr.Checkpoint(1, ck); err != nil {
				t.Fatal(err)
			}
			if err := tr.End(tc.err, registry.Summary{CVF2: 0.61}); err != nil {
				t.Fatal(err)
			}
			got, _ := db.Get(tr.ID())
			if got.Status != tc.status {
				t.Errorf("status %s, want %s", got.Status, tc.status)
			}
			arts, _ := db.Artifacts(tr.ID())
			if len(arts) != 1 || arts[0].Kind != "checkpoint" {
				t.Errorf("artifacts %+v", arts)
			}
			if len(rec.msgs) != 3 || !strings.Contains(rec.msgs[0], "started") || !strings.Contains(rec.msgs[1], "checkpoint") {
				t.Fatalf("messages %q", rec.msgs)
			}
			last := rec.msgs[2]
			for _, w := range tc.lastWant {
				if !strings.Contains(last, w) {
					t.Errorf("last message %q lacks %q", last, w)
				}
			}
			if strings.Contains(last, tc.lastBanned) {
				t.Errorf("last message %q contains %q", last, tc.lastBanned)
			}
		})
	}
}

func TestNotificationFailureDoesNotStopRun(t *testing.T) {
	db, _ := registry.Open(filepath.Join(t.TempDir(), "r.db"))
	defer db.Close()
	var warn bytes.Buffer
	tr, err := Start(db, registry.RunInfo{Name: "x", Kind: registry.KindCV}, notify.NewWith(notify.DefaultConfig(), &recorder{fail: true}), &warn)
	if err != nil {
		t.Fatal(err)
	}
	if err := tr.End(nil, registry.Summary{CVF2: 0.5}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(warn.String(), "service down") {
		t.Errorf("delivery failure not warned about: %q", warn.String())
	}
	if got, _ := db.Get(tr.ID()); got.Status != registry.StatusFinished {
		t.Errorf("status %s", got.Status)
	}
	// A nil notifier means no notifications.
	tr, _ = Start(db, registry.RunInfo{Name: "y", Kind: registry.KindCV}, nil, &warn)
	if err := tr.End(nil, registry.Summary{}); err != nil {
		t.Fatal(err)
	}
}

// A run that stops cleanly before completing is recorded as interrupted
// and announced as such, with the reason and the command that resumes it.
func TestStopIsAnnouncedAsInterrupted(t *testing.T) {
	db, err := registry.Open(filepath.Join(t.TempDir(), "r.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rec := &recorder{}
	tr, err := Start(db, registry.RunInfo{Name: "r50", Kind: registry.KindTrain}, notify.NewWith(notify.DefaultConfig(), rec), nil)
	if err != nil {
		t.Fatal(err)
	}
	resume := "imet train --resume runs/r50/fold0"
	if err := tr.Stop("SIGTERM", resume); err != nil {
		t.Fatal(err)
	}
	got, _ := db.Get(tr.ID())
	if got.Status != registry.StatusInterrupted || !strings.Contains(got.Note, "SIGTERM") || !strings.Contains(got.Note, resume) {
		t.Errorf("recorded %s, note %q", got.Status, got.Note)
	}
	if len(rec.msgs) != 2 || !strings.Contains(rec.msgs[1], "interrupted (SIGTERM)") || !strings.Contains(rec.msgs[1], resume) {
		t.Fatalf("messages %q", rec.msgs)
	}
}
