package train

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"imet/internal/postprocess/probs"
	"imet/internal/training/targets"
	"imet/internal/training/trainconfig"
)

// roundData writes a data set of CSVs only (OpenFold does not open the
// images): labels 0,1 culture and 2,3,4 tag; train images t0..t7, each
// with label (i mod 5) and, for even i, label 2; test images s0..s3; two
// folds, odd images in fold 1.
func roundData(t *testing.T) (dir string, cfg trainconfig.Run) {
	t.Helper()
	dir = t.TempDir()
	write := func(name, body string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("labels.csv", "attribute_id,attribute_name\n0,culture::a\n1,culture::b\n2,tag::x\n3,tag::y\n4,tag::z\n")
	var tr, fo strings.Builder
	tr.WriteString("id,attribute_ids\n")
	fo.WriteString("id,fold\n")
	for i := range 8 {
		ls := []string{fmt.Sprint(i % 5)}
		if i%2 == 0 && i%5 != 2 {
			ls = append(ls, "2")
		}
		fmt.Fprintf(&tr, "t%d,%s\n", i, strings.Join(ls, " "))
		fmt.Fprintf(&fo, "t%d,%d\n", i, i%2)
	}
	write("train.csv", tr.String())
	write("folds.csv", fo.String())
	write("sample_submission.csv", "id,attribute_ids\ns0,0\ns1,0\ns2,0\ns3,0\n")
	os.Mkdir(filepath.Join(dir, "train"), 0o755)
	os.Mkdir(filepath.Join(dir, "test"), 0o755)
	cfg = trainconfig.Default()
	cfg.Data.Root = dir
	for i := range cfg.Stages {
		cfg.Stages[i].BatchSize = 2
	}
	return dir, cfg
}

// probFile writes a probability file with rows for ids over label columns
// labels, row i's value at column c being f(i, c).
func probFile(t *testing.T, path string, ids, labels []string, f func(i, c int) float32) {
	t.Helper()
	m := &probs.Matrix{Rows: len(ids), Cols: len(labels), Data: make([]float32, len(ids)*len(labels))}
	for i := range ids {
		for c := range labels {
			m.Data[i*len(labels)+c] = f(i, c)
		}
	}
	if err := probs.Save(path, &probs.File{Matrix: m, IDs: ids, Labels: labels}); err != nil {
		t.Fatal(err)
	}
}

func itemTargets(s *ImageSource) map[string][]float32 {
	out := map[string][]float32{}
	for _, it := range s.items {
		id := strings.TrimSuffix(filepath.Base(it.Path), filepath.Ext(it.Path))
		out[filepath.Base(filepath.Dir(it.Path))+"/"+id] = it.Target
	}
	return out
}

func TestSoftTargetsTouchTrainingOnly(t *testing.T) {
	dir, cfg := roundData(t)
	ids := []string{"t0", "t1", "t2", "t3", "t4", "t5", "t6", "t7"}
	soft := filepath.Join(dir, "teacher.npy")
	// The teacher covers labels 4, 2, 0 only (another column order) and
	// says 0.9 for every one of them.
	probFile(t, soft, ids, []string{"4", "2", "0"}, func(i, c int) float32 { return 0.9 })
	for _, rule := range targets.Rules() {
		t.Run(rule, func(t *testing.T) {
			cfg := cfg
			cfg.Targets.Soft = trainconfig.Soft{File: soft, Rule: rule, Alpha: 0.5}
			fd, err := OpenFold(&cfg, 1)
			if err != nil {
				t.Fatal(err)
			}
			if fd.Softened != 4 {
				t.Fatalf("softened %d rows, want the 4 training rows", fd.Softened)
			}
			tr := itemTargets(fd.Train)
			// t0 has labels 0 and 2; 1, 3 are absent from the teacher.
			want := []float32{targets.Combine(rule, 0.5, 1, 0.9), 0, targets.Combine(rule, 0.5, 1, 0.9), 0, targets.Combine(rule, 0.5, 0, 0.9)}
			if got := tr["train/t0"]; !slices.Equal(got, want) {
				t.Fatalf("t0's target %v, want %v", got, want)
			}
			for id, v := range itemTargets(fd.Val) {
				for _, x := range v {
					if x != 0 && x != 1 {
						t.Fatalf("validation image %s has soft target %v", id, v)
					}
				}
			}
		})
	}
	if got := targets.Combine(targets.Max, 0.7, 0, 0.5); got != 0.35 {
		t.Fatalf("max(0, 0.7*0.5) = %v", got)
	}
	if got := targets.Combine(targets.Mix, 0.25, 1, 0); got != 0.75 {
		t.Fatalf("mix = %v", got)
	}

	// A training row (t7, fold 0 trains on odd images) without a teacher row
	// is an error naming it.
	probFile(t, soft, ids[:7], []string{"0"}, func(i, c int) float32 { return 0.5 })
	cfg.Targets.Soft = trainconfig.Soft{File: soft, Rule: targets.Max, Alpha: 0.7}
	if _, err := OpenFold(&cfg, 0); err == nil || !strings.Contains(err.Error(), "image t7") {
		t.Fatalf("teacher without t7: %v", err)
	}
	// So is a label id the data set does not have, with the sidecar's line.
	probFile(t, soft, ids, []string{"0", "77"}, func(i, c int) float32 { return 0.5 })
	if _, err := OpenFold(&cfg, 0); err == nil || !strings.Contains(err.Error(), "teacher.labels.csv:3") {
		t.Fatalf("unknown label: %v", err)
	}
}

func TestPseudoLabelsNeverLeakTheValidationFold(t *testing.T) {
	dir, cfg := roundData(t)
	pseudo := filepath.Join(dir, "pseudo.npy")
	// Test images s0..s3 with confidence rising with the index, and every
	// training image too (as if an OOF file were passed): those must never
	// join, least of all fold k's own.
	ids := []string{"t0", "t1", "t2", "t3", "t4", "t5", "t6", "t7", "s0", "s1", "s2", "s3"}
	probFile(t, pseudo, ids, []string{"0", "1", "2", "3", "4"}, func(i, c int) float32 {
		if i < 8 {
			return 1
		}
		conf := 0.1 * float32(i-8) // s3 the most confident
		if c%2 == 0 {
			return 0.5 + conf
		}
		return 0.5 - conf
	})
	cfg.Targets.Pseudo = trainconfig.Pseudo{File: pseudo, Share: 0.5, Threshold: 0.5}
	for k := range 2 {
		fd, err := OpenFold(&cfg, k)
		if err != nil {
			t.Fatal(err)
		}
		tr := itemTargets(fd.Train)
		for _, v := range fd.ValIDs {
			if _, ok := tr["train/"+v]; ok {
				t.Fatalf("fold %d trains on its validation image %s", k, v)
			}
			if _, ok := tr["test/"+v]; ok {
				t.Fatalf("fold %d trains on its validation image %s as a pseudo-label", k, v)
			}
		}
		if len(tr) != 4+2 {
			t.Fatalf("fold %d: %d training items, want 4 rows and 2 pseudo-labels: %v", k, len(tr), tr)
		}
		if fd.PseudoSkipped != 8 {
			t.Fatalf("fold %d skipped %d training rows of the file", k, fd.PseudoSkipped)
		}
		// The two most confident, hard-thresholded at 0.5.
		for _, id := range []string{"test/s3", "test/s2"} {
			if got := tr[id]; !slices.Equal(got, []float32{1, 0, 1, 0, 1}) {
				t.Fatalf("%s: target %v", id, got)
			}
		}
		if !strings.Contains(fd.Summary(), "2 pseudo-labelled test images") {
			t.Fatalf("summary %q", fd.Summary())
		}
	}
	// min_confidence leaves out s2 (0.2 < 0.25); soft targets are the
	// probabilities.
	cfg.Targets.Pseudo = trainconfig.Pseudo{File: pseudo, Share: 1, MinConfidence: 0.25}
	fd, err := OpenFold(&cfg, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(fd.Pseudo) != 1 || fd.Pseudo[0].ID != "s3" || fd.Pseudo[0].Target[1] != float32(0.5)-0.3 {
		t.Fatalf("pseudo %+v", fd.Pseudo)
	}
	// An id that is neither test nor train is an error with its line.
	probFile(t, pseudo, []string{"s0", "zz"}, []string{"0"}, func(i, c int) float32 { return 1 })
	if _, err := OpenFold(&cfg, 0); err == nil || !strings.Contains(err.Error(), "pseudo.ids.csv:3") {
		t.Fatalf("stray id: %v", err)
	}
}

func TestTrainCSVAndLabelSubset(t *testing.T) {
	dir, cfg := roundData(t)
	clean := filepath.Join(dir, "clean.csv")
	// t0 dropped, t2 relabelled to 3 only, t5 (validation of fold 1) relabelled.
	os.WriteFile(clean, []byte("id,attribute_ids\nt1,1\nt2,3\nt3,3\nt4,4 2\nt5,0\nt6,1 2\nt7,2\n"), 0o644)
	cfg.Targets.TrainCSV = clean
	fd, err := OpenFold(&cfg, 1)
	if err != nil {
		t.Fatal(err)
	}
	tr := itemTargets(fd.Train)
	if _, ok := tr["train/t0"]; ok || fd.Dropped != 1 || len(tr) != 3 {
		t.Fatalf("dropped %d, training %v", fd.Dropped, tr)
	}
	if got := tr["train/t2"]; !slices.Equal(got, []float32{0, 0, 0, 1, 0}) {
		t.Fatalf("t2 relabelled: %v", got)
	}
	// Validation keeps root's labels: t5 is 0 (5 mod 5), not relabelled.
	if i := slices.Index(fd.ValIDs, "t5"); i < 0 || !slices.Equal(fd.ValTruth[i], []int{0}) {
		t.Fatalf("t5's validation truth %v", fd.ValTruth)
	}

	// A tag specialist trains on labels 2, 3, 4 only.
	cfg.Data.Labels = []string{"tag"}
	fd, err = OpenFold(&cfg, 1)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(fd.LabelIDs, []string{"2", "3", "4"}) || fd.Train.Classes() != 3 {
		t.Fatalf("labels %v, classes %d", fd.LabelIDs, fd.Train.Classes())
	}
	tr = itemTargets(fd.Train)
	if got := tr["train/t4"]; !slices.Equal(got, []float32{1, 0, 1}) {
		t.Fatalf("t4 in the tag space: %v", got)
	}
	if got := tr["train/t2"]; !slices.Equal(got, []float32{0, 1, 0}) {
		t.Fatalf("t2 relabelled, tag space: %v", got)
	}
	// t1's label 1 is a culture: no tag.
	if i := slices.Index(fd.ValIDs, "t1"); i < 0 || len(fd.ValTruth[i]) != 0 {
		t.Fatalf("t1's tag truth %v", fd.ValTruth)
	}
	cfg.Data.Labels = []string{"tag", "9"}
	if _, err := OpenFold(&cfg, 1); err == nil || !strings.Contains(err.Error(), "attribute id 9") {
		t.Fatalf("unknown id: %v", err)
	}
	cfg.Data.Labels = []string{"colour"}
	if _, err := OpenFold(&cfg, 1); err == nil || !strings.Contains(err.Error(), "culture, tag") {
		t.Fatalf("unknown group: %v", err)
	}
	// An image the data set lacks, with its line.
	os.WriteFile(clean, []byte("id,attribute_ids\nt1,1\nq9,3\n"), 0o644)
	cfg.Data.Labels = nil
	if _, err := OpenFold(&cfg, 1); err == nil || !strings.Contains(err.Error(), "clean.csv:3") {
		t.Fatalf("stray image: %v", err)
	}
}
