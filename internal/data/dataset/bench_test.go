package dataset

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// BenchmarkReadTrainIMet reads an iMet 2019-sized train.csv (109,237 rows,
// 1,103 labels, ~4.4 labels per row).
func BenchmarkReadTrainIMet(b *testing.B) {
	dir := b.TempDir()
	var lb strings.Builder
	lb.WriteString("attribute_id,attribute_name\n")
	for i := 0; i < 1103; i++ {
		g := "tag"
		if i < 398 {
			g = "culture"
		}
		fmt.Fprintf(&lb, "%d,%s::value %d\n", i, g, i)
	}
	os.WriteFile(filepath.Join(dir, LabelsFile), []byte(lb.String()), 0o644)
	rng := rand.New(rand.NewPCG(1, 2))
	var tb strings.Builder
	tb.WriteString("id,attribute_ids\n")
	for r := 0; r < 109237; r++ {
		fmt.Fprintf(&tb, "%016x,%d", rng.Uint64(), rng.IntN(398))
		for k := 0; k < 1+rng.IntN(6); k++ {
			fmt.Fprintf(&tb, " %d", 398+rng.IntN(705))
		}
		tb.WriteByte('\n')
	}
	os.WriteFile(filepath.Join(dir, TrainFile), []byte(tb.String()), 0o644)
	l, err := ReadLabels(filepath.Join(dir, LabelsFile))
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		// Random draws may repeat a tag within a row; allow it by
		// reading with a large problem budget and counting rows read.
		c := newCollector(1<<30, false)
		rows, _, err := readTrain(c, filepath.Join(dir, TrainFile), l, false)
		if err != nil || len(rows) < 100000 {
			b.Fatalf("%d rows, %v", len(rows), err)
		}
	}
}
