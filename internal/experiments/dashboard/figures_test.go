package dashboard

import (
	"bytes"
	"fmt"
	"image/png"
	"os"
	"strings"
	"testing"
	"time"

	"imet/internal/experiments/figures/figurestest"
	"imet/internal/experiments/registry"
)

// seedCV records a finished cv run whose outputs are a figurestest
// fixture, with its folds' curves, as imet cv records one.
func seedCV(t *testing.T, db *registry.DB) (int64, *figurestest.Run) {
	t.Helper()
	fx, err := figurestest.Write(t.TempDir(), 500, 3, 3)
	if err != nil {
		t.Fatal(err)
	}
	r, err := db.Start(registry.RunInfo{Name: "resnet18-cv", Kind: registry.KindCV, Config: fx.Config})
	if err != nil {
		t.Fatal(err)
	}
	for f := 0; f < 3; f++ {
		for s := 0; s <= 40; s++ {
			x := float64(s)
			r.Metric(s, x/10, fmt.Sprintf("fold%d/loss", f), 0.05+0.7/(1+x/(5+float64(f))))
			r.Metric(s, x/10, fmt.Sprintf("fold%d/lr", f), 1e-3*(1-x/40))
			if s%10 == 0 {
				r.Metric(s, x/10, fmt.Sprintf("fold%d/train_loss", f), 0.06+0.7/(1+x/(5+float64(f))))
				r.Metric(s, x/10, fmt.Sprintf("fold%d/val_loss", f), 0.1+0.7/(1+x/(4+float64(f))))
				r.Metric(s, x/10, fmt.Sprintf("fold%d/val_f2", f), (0.8+0.02*float64(f))*(1-1/(1+x/8)))
			}
		}
	}
	for _, a := range [][2]string{{"probabilities", fx.Sources.OOF}, {"thresholds", fx.Sources.Thresholds}} {
		if err := r.Artifact(a[0], a[1]); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Finish(registry.Summary{CVF2: fx.Results[len(fx.Results)-1].Score}); err != nil {
		t.Fatal(err)
	}
	return r.ID(), fx
}

// A cv run's page links its three figures, each drawn on request as SVG
// or PNG; a train run has none, and names outside the list are refused.
func TestCVFigures(t *testing.T) {
	db, _ := seed(t)
	id, fx := seedCV(t, db)
	base := serve(t, "127.0.0.1:0", New(db, Options{Refresh: time.Second}))
	run := fmt.Sprintf("/runs/%d", id)
	code, body, _ := get(t, base+run, nil)
	if code != 200 {
		t.Fatalf("%s: %d", run, code)
	}
	for _, name := range []string{"thresholds", "folds", "labels"} {
		if !strings.Contains(body, fmt.Sprintf(`<img src="%s/figures/%s.png"`, run, name)) || !strings.Contains(body, fmt.Sprintf(`href="%s/figures/%s.svg"`, run, name)) {
			t.Errorf("page lacks the %s figure", name)
		}
	}
	for file, want := range map[string]string{
		"thresholds.svg": "group culture: chosen", "folds.svg": "all folds", "labels.svg": "tag (",
	} {
		code, body, resp := get(t, base+run+"/figures/"+file, nil)
		if code != 200 || resp.Header.Get("Content-Type") != "image/svg+xml" || !strings.Contains(body, "<svg") || !strings.Contains(body, want) {
			t.Errorf("%s: %d %s, lacks %q", file, code, resp.Header.Get("Content-Type"), want)
		}
	}
	code, body, resp := get(t, base+run+"/figures/folds.png", nil)
	if code != 200 || resp.Header.Get("Content-Type") != "image/png" {
		t.Fatalf("folds.png: %d", code)
	}
	if img, err := png.Decode(bytes.NewReader([]byte(body))); err != nil || img.Bounds().Dx() < 400 {
		t.Errorf("folds.png: %v", err)
	}
	for _, bad := range []string{run + "/figures/nope.svg", run + "/figures/folds.gif", "/runs/1/figures/folds.svg", "/runs/999/figures/folds.svg"} {
		if code, _, _ := get(t, base+bad, nil); code != 404 {
			t.Errorf("%s: %d, want 404", bad, code)
		}
	}
	if _, body, _ := get(t, base+"/runs/1", nil); strings.Contains(body, "/figures/") || strings.Contains(body, "Cross-validation") {
		t.Error("a train run's page shows cross-validation figures")
	}
	// A data set gone since the run: the page says why, naming the file.
	os.Remove(fx.Sources.Data + "/train.csv")
	srv := New(db, Options{})
	base = serve(t, "127.0.0.1:0", srv)
	if _, body, _ := get(t, base+run, nil); !strings.Contains(body, "Cross-validation figures") || !strings.Contains(body, "train.csv") {
		t.Errorf("missing truth not reported:\n%s", body)
	}
}

func TestCVFiguresNeedToken(t *testing.T) {
	db, _ := seed(t)
	id, _ := seedCV(t, db)
	base := serve(t, "127.0.0.1:0", New(db, Options{Token: "s3cret-token-0123456"}))
	url := fmt.Sprintf("%s/runs/%d/figures/folds.svg", base, id)
	if code, body, _ := get(t, url, nil); code != 401 || strings.Contains(body, "<svg") {
		t.Errorf("figure without token: %d", code)
	}
	if code, _, _ := get(t, url, map[string]string{"Authorization": "Bearer s3cret-token-0123456"}); code != 200 {
		t.Errorf("figure with token: %d", code)
	}
}
