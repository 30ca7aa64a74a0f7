package registry

import (
	"bufio"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"imet/internal/base/redact"
)

func openTemp(t *testing.T) *DB {
	t.Helper()
	db, err := Open(filepath.Join(t.TempDir(), "runs", "registry.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestOpenCreatesWALSchema(t *testing.T) {
	db := openTemp(t)
	var mode string
	if err := db.sql.QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil {
		t.Fatal(err)
	}
	if mode != "wal" {
		t.Errorf("journal_mode %q, want wal", mode)
	}
	var v int
	db.sql.QueryRow("PRAGMA user_version").Scan(&v)
	if v != SchemaVersion {
		t.Errorf("user_version %d, want %d", v, SchemaVersion)
	}
}

func TestOpenRefusesNewerSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "r.db")
	db, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	db.sql.Exec(fmt.Sprintf("PRAGMA user_version = %d", SchemaVersion+1))
	db.Close()
	_, err = Open(path)
	if err == nil || !strings.Contains(err.Error(), "newer") || !strings.Contains(err.Error(), path) {
		t.Fatalf("Open of a newer schema: %v", err)
	}
}

func TestRunLifecycle(t *testing.T) {
	db := openTemp(t)
	ckpt := filepath.Join(t.TempDir(), "model.ckpt")
	os.WriteFile(ckpt, []byte("abc"), 0o644)

	r, err := db.Start(RunInfo{Name: "r50", Kind: KindTrain, Args: []string{"imet", "train", "--fold", "0"},
		Config: "model:\n  arch: resnet50\noptim:\n  lr: 0.001\n", DataFingerprint: "fp1"})
	if err != nil {
		t.Fatal(err)
	}
	for step := 1; step <= 3; step++ {
		if err := r.Metric(step, float64(step)/3, "train_loss", 1/float64(step)); err != nil {
			t.Fatal(err)
		}
	}
	r.Metric(3, 1, "val_f2", 0.55)
	if err := r.Artifact("checkpoint", ckpt); err != nil {
		t.Fatal(err)
	}
	if err := r.Finish(Summary{CVF2: 0.61, GroupF2: map[string]float64{"culture": 0.5, "tag": 0.65}}); err != nil {
		t.Fatal(err)
	}
	if err := r.Fail(errors.New("late"), nil); err == nil {
		t.Error("a finished run could be failed afterwards")
	}

	rec, err := db.Get(r.ID())
	if err != nil {
		t.Fatal(err)
	}
	if rec.Status != StatusFinished || rec.CVF2 == nil || *rec.CVF2 != 0.61 || rec.GroupF2["tag"] != 0.65 {
		t.Errorf("record %+v", rec)
	}
	if rec.EndedAt.Before(rec.StartedAt) || rec.PID != os.Getpid() || rec.CodeVersion == "" || rec.Machine == "" {
		t.Errorf("provenance missing: %+v", rec)
	}
	if strings.Join(rec.Args, " ") != "imet train --fold 0" || rec.DataFingerprint != "fp1" {
		t.Errorf("args/fingerprint: %q %q", rec.Args, rec.DataFingerprint)
	}
	ms, err := db.Metrics(r.ID())
	if err != nil {
		t.Fatal(err)
	}
	if len(ms["train_loss"]) != 3 || ms["train_loss"][2].Value != 1.0/3 || ms["train_loss"][2].Step != 3 || len(ms["val_f2"]) != 1 {
		t.Errorf("metrics %+v", ms)
	}
	arts, _ := db.Artifacts(r.ID())
	// SHA-256("abc") from FIPS 180-2, appendix B.1.
	if len(arts) != 1 || arts[0].SHA256 != "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" || arts[0].Size != 3 {
		t.Errorf("artifacts %+v", arts)
	}
	if _, err := os.Stat(rec.lockPath(t, db)); !os.IsNotExist(err) {
		t.Errorf("lock file left behind after finish: %v", err)
	}
}

// lockPath reads the stored lock path, which Record does not expose.
func (r *Record) lockPath(t *testing.T, db *DB) string {
	var p string
	if err := db.sql.QueryRow("SELECT lock_path FROM runs WHERE id=?", r.ID).Scan(&p); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestFailIsNeverSuccess(t *testing.T) {
	db := openTemp(t)
	for _, tc := range []struct {
		err  error
		want string
	}{
		{errors.New("CUDA out of memory"), "CUDA out of memory"},
		{nil, "failed without an error message"},
	} {
		r, err := db.Start(RunInfo{Name: "x", Kind: KindCV})
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Fail(tc.err, []string{"epoch 3", "boom"}); err != nil {
			t.Fatal(err)
		}
		rec, _ := db.Get(r.ID())
		if rec.Status != StatusFailed || rec.Error != tc.want || rec.LogTail != "epoch 3\nboom" || rec.CVF2 != nil {
			t.Errorf("failed run recorded as %+v", rec)
		}
		if err := r.Finish(Summary{CVF2: 1}); err == nil {
			t.Error("a failed run could be finished afterwards")
		}
	}
}

func TestStartValidates(t *testing.T) {
	db := openTemp(t)
	for _, info := range []RunInfo{{Kind: KindTrain}, {Name: "a", Kind: "bake"}} {
		if _, err := db.Start(info); err == nil {
			t.Errorf("Start(%+v) accepted", info)
		}
	}
}

func TestResolveTagLBList(t *testing.T) {
	db := openTemp(t)
	a, _ := db.Start(RunInfo{Name: "base", Kind: KindTrain})
	b, _ := db.Start(RunInfo{Name: "base", Kind: KindTrain, ResumedFrom: a.ID()})
	c, _ := db.Start(RunInfo{Name: "pred", Kind: KindPredict})
	a.Fail(errors.New("x"), nil)
	b.Finish(Summary{CVF2: 0.6})
	defer c.Finish(Summary{})

	if id, err := db.Resolve("base"); err != nil || id != b.ID() {
		t.Errorf("Resolve(base) = %d, %v; want newest %d", id, err, b.ID())
	}
	if id, err := db.Resolve(strconv.FormatInt(a.ID(), 10)); err != nil || id != a.ID() {
		t.Errorf("Resolve(id) = %d, %v", id, err)
	}
	if _, err := db.Resolve("nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Resolve(nope): %v", err)
	}
	if _, err := db.Resolve("999"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Resolve(999): %v", err)
	}
	if err := db.SetLB(b.ID(), 0.622); err != nil {
		t.Fatal(err)
	}
	if err := db.SetLB(999, 0.5); !errors.Is(err, ErrNotFound) {
		t.Errorf("SetLB(999): %v", err)
	}
	db.Tag(b.ID(), "best", "r50")
	db.Untag(b.ID(), "r50")
	rec, _ := db.Get(b.ID())
	if rec.LB == nil || *rec.LB != 0.622 || strings.Join(rec.Tags, ",") != "best" || rec.ResumedFrom != a.ID() {
		t.Errorf("record %+v", rec)
	}

	for _, tc := range []struct {
		f    Filter
		want []int64
	}{
		{Filter{}, []int64{c.ID(), b.ID(), a.ID()}},
		{Filter{Kind: KindTrain}, []int64{b.ID(), a.ID()}},
		{Filter{Status: StatusFailed}, []int64{a.ID()}},
		{Filter{Tag: "best"}, []int64{b.ID()}},
		{Filter{Limit: 1}, []int64{c.ID()}},
	} {
		got, err := db.List(tc.f)
		if err != nil {
			t.Fatal(err)
		}
		var ids []int64
		for _, r := range got {
			ids = append(ids, r.ID)
		}
		if fmt.Sprint(ids) != fmt.Sprint(tc.want) {
			t.Errorf("List(%+v) = %v, want %v", tc.f, ids, tc.want)
		}
	}
}

// TestMain lets the test binary play a trainer that gets killed: with
// IMET_REGISTRY_CHILD set it starts a run, reports its id and waits to die.
func TestMain(m *testing.M) {
	if path := os.Getenv("IMET_REGISTRY_CHILD"); path != "" {
		db, err := Open(path)
		if err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		r, err := db.Start(RunInfo{Name: "doomed", Kind: KindTrain})
		if err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		r.Metric(1, 0.1, "train_loss", 0.9)
		fmt.Println("started", r.ID())
		time.Sleep(time.Minute)
		os.Exit(3)
	}
	os.Exit(m.Run())
}

func TestKilledRunShowsInterrupted(t *testing.T) {
	path := filepath.Join(t.TempDir(), "registry.db")
	db, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// A run alive in this process must survive the reconciliation.
	alive, err := db.Start(RunInfo{Name: "alive", Kind: KindTrain})
	if err != nil {
		t.Fatal(err)
	}
	defer alive.Finish(Summary{})

	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "IMET_REGISTRY_CHILD="+path)
	out, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "started ") {
		cmd.Process.Kill()
		t.Fatalf("child said %q, %v", line, err)
	}
	id, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimPrefix(line, "started ")), 10, 64)

	rec, err := db.Get(id)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Status != StatusRunning {
		t.Fatalf("live child's run is %s, want running", rec.Status)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()

	// The next start of any command (here: a fresh Open) notices.
	db2, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db2.Close()
	rec, err = db2.Get(id)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Status != StatusInterrupted || rec.EndedAt.IsZero() || !strings.Contains(rec.Error, "killed") {
		t.Errorf("killed run is %s (ended %v, error %q), want interrupted", rec.Status, rec.EndedAt, rec.Error)
	}
	if got, _ := db2.Get(alive.ID()); got.Status != StatusRunning {
		t.Errorf("live run became %s", got.Status)
	}
}

func TestStoredConfigHasNoToken(t *testing.T) {
	db := openTemp(t)
	const tok = "987654:SECRETSECRET"
	r, err := db.Start(RunInfo{Name: "x", Kind: KindTrain, Config: "notify:\n  bot_token: " + tok + "\n"})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Finish(Summary{})
	var cfg string
	db.sql.QueryRow("SELECT config FROM runs WHERE id=?", r.ID()).Scan(&cfg)
	if strings.Contains(cfg, tok) {
		t.Errorf("token stored in registry: %q", cfg)
	}
}

// Every text a run stores passes through the process's redactor: the
// command line, the configuration, the error, the log tail and notes.
func TestEveryStoredTextIsRedacted(t *testing.T) {
	const secret = "REGISTEREDSECRET99"
	redact.Add(secret)
	db := openTemp(t)
	r, err := db.Start(RunInfo{Name: "x", Kind: KindTrain,
		Args:   []string{"imet", "train", "--hook", "generic://example.com/h?token=UNREGISTERED1"},
		Config: "notify:\n  url_env: X\n  note: " + secret + "\n"})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Fail(errors.New("send failed: "+secret), []string{"log " + secret, "Post \"https://h.example.com/x?key=UNREGISTERED2\""}); err != nil {
		t.Fatal(err)
	}
	if err := db.SetNote(r.ID(), "tried "+secret); err != nil {
		t.Fatal(err)
	}
	var row string
	if err := db.sql.QueryRow("SELECT name||args||config||error||log_tail||note FROM runs WHERE id=?", r.ID()).Scan(&row); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{secret, "UNREGISTERED1", "UNREGISTERED2"} {
		if strings.Contains(row, s) {
			t.Errorf("registry row holds %s: %q", s, row)
		}
	}
}

func TestDiffConfigs(t *testing.T) {
	a := "model:\n  arch: resnet50\n  dropout: 0.2\noptim:\n  lr: 0.001\naug: [flip]\n"
	b := "model:\n  arch: resnet50\n  dropout: 0.3\noptim:\n  lr: 0.001\n  wd: 0.0001\naug: [flip, crop]\n"
	got, err := DiffConfigs(a, b)
	if err != nil {
		t.Fatal(err)
	}
	want := "[{aug [[flip] [flip, crop]]} {model.dropout [0.2 0.3]} {optim.wd [ 0.0001]}]"
	if fmt.Sprint(got) != want {
		t.Errorf("DiffConfigs = %v, want %v", got, want)
	}
	if _, err := DiffConfigs("a: [", "b: 1"); err == nil {
		t.Error("broken YAML accepted")
	}
}

func TestFingerprint(t *testing.T) {
	dir := t.TempDir()
	csv := filepath.Join(dir, "train.csv")
	imgs := filepath.Join(dir, "train")
	os.MkdirAll(imgs, 0o755)
	os.WriteFile(csv, []byte("id,attribute_ids\na,1 2\n"), 0o644)
	os.WriteFile(filepath.Join(imgs, "a.png"), []byte("png"), 0o644)
	fp := func() string {
		s, err := Fingerprint([]string{csv}, imgs)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	base := fp()
	if fp() != base || len(base) != 64 {
		t.Fatalf("fingerprint unstable or malformed: %q", base)
	}
	os.WriteFile(filepath.Join(imgs, "b.png"), []byte("png"), 0o644)
	withImage := fp()
	if withImage == base {
		t.Error("adding an image did not change the fingerprint")
	}
	os.WriteFile(csv, []byte("id,attribute_ids\na,1 3\n"), 0o644)
	if fp() == withImage {
		t.Error("changing a label did not change the fingerprint")
	}
	if _, err := Fingerprint([]string{filepath.Join(dir, "missing.csv")}, ""); err == nil || !strings.Contains(err.Error(), "missing.csv") {
		t.Errorf("missing CSV: %v", err)
	}
}

var _ = sql.ErrNoRows

func TestTail(t *testing.T) {
	for _, tc := range []struct {
		writes []string
		n      int
		want   string
	}{
		{[]string{"a\nb\n", "c\n"}, 2, "b|c"},
		{[]string{"a\nb", "c\nd"}, 5, "a|bc|d"},
		{[]string{"x\r\n"}, 3, "x"},
		{nil, 3, ""},
	} {
		tl := NewTail(tc.n)
		for _, w := range tc.writes {
			tl.Write([]byte(w))
		}
		if got := strings.Join(tl.Lines(), "|"); got != tc.want {
			t.Errorf("%q: %q, want %q", tc.writes, got, tc.want)
		}
	}
}

func BenchmarkMetric(b *testing.B) {
	db, err := Open(filepath.Join(b.TempDir(), "r.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	r, _ := db.Start(RunInfo{Name: "bench", Kind: KindTrain})
	defer r.Finish(Summary{})
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := r.Metric(i, float64(i)/1000, "train_loss", 0.5); err != nil {
			b.Fatal(err)
		}
	}
}

func TestOpenRejectsNonDatabase(t *testing.T) {
	path := filepath.Join(t.TempDir(), "notes.db")
	os.WriteFile(path, []byte(strings.Repeat("CV 0.61 LB 0.62, written by hand\n", 20)), 0o644)
	_, err := Open(path)
	if err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("Open of a text file: %v", err)
	}
	if b, _ := os.ReadFile(path); !strings.HasPrefix(string(b), "CV 0.61") {
		t.Error("Open damaged the file it refused")
	}
}

// A cv run's held-out F2 is kept beside its in-sample one; a run that
// measured none reads back nil, also from a file made by a binary that
// knew no held-out column (schema version 1), which Open upgrades.
func TestHeldOutF2(t *testing.T) {
	path := filepath.Join(t.TempDir(), "r.db")
	db, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	// Rebuild the file as version 1 wrote it, with one finished run.
	for _, q := range []string{`ALTER TABLE runs DROP COLUMN heldout_f2`, `DROP TABLE parents`, `PRAGMA user_version = 1`,
		`INSERT INTO runs (name, kind, started_at, status, cv_f2) VALUES ('old', 'cv', 1, 'finished', 0.5)`} {
		if _, err := db.sql.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	db.Close()
	if db, err = Open(path); err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	old, err := db.Get(1)
	if err != nil {
		t.Fatal(err)
	}
	if old.CVF2 == nil || *old.CVF2 != 0.5 || old.HeldOutF2 != nil {
		t.Fatalf("run from version 1: cv %v, held-out %v", old.CVF2, old.HeldOutF2)
	}
	r, err := db.Start(RunInfo{Name: "cv", Kind: KindCV})
	if err != nil {
		t.Fatal(err)
	}
	ho := 0.28
	if err := r.Finish(Summary{CVF2: 0.31, HeldOutF2: &ho}); err != nil {
		t.Fatal(err)
	}
	rec, err := db.Get(r.ID())
	if err != nil {
		t.Fatal(err)
	}
	if rec.CVF2 == nil || *rec.CVF2 != 0.31 || rec.HeldOutF2 == nil || *rec.HeldOutF2 != 0.28 {
		t.Fatalf("cv %v, held-out %v", rec.CVF2, rec.HeldOutF2)
	}
}

// A run that combines others (an ensemble plan) reads back its parents,
// in id order, once each however often they were added.
func TestParents(t *testing.T) {
	db, err := Open(filepath.Join(t.TempDir(), "r.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var ids []int64
	for _, name := range []string{"a", "b"} {
		r, err := db.Start(RunInfo{Name: name, Kind: KindCV})
		if err != nil {
			t.Fatal(err)
		}
		r.Finish(Summary{})
		ids = append(ids, r.ID())
	}
	p, err := db.Start(RunInfo{Name: "plan", Kind: KindPlan})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AddParents(ids[1], ids[0], ids[1]); err != nil {
		t.Fatal(err)
	}
	p.Finish(Summary{})
	got, err := db.Get(p.ID())
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Parents) != 2 || got.Parents[0] != ids[0] || got.Parents[1] != ids[1] {
		t.Fatalf("parents %v, want %v", got.Parents, ids)
	}
	if a, _ := db.Get(ids[0]); len(a.Parents) != 0 {
		t.Fatalf("a part has parents %v", a.Parents)
	}
}
