package registry_test

import (
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"imet/internal/experiments/registry"
)

// A training command records its run like this. The lead's trainer adds
// notifications (package notify) at the same points.
func Example() {
	dir, _ := os.MkdirTemp("", "registry-example")
	defer os.RemoveAll(dir)
	db, err := registry.Open(filepath.Join(dir, "registry.db"))
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()

	run, err := db.Start(registry.RunInfo{
		Name:   "resnet50-fold0",
		Kind:   registry.KindTrain,
		Args:   []string{"imet", "train", "--config", "r50.yaml"},
		Config: "model:\n  arch: resnet50\n",
	})
	if err != nil {
		log.Fatal(err)
	}
	tail := registry.NewTail(50) // tee the log into it
	fmt.Fprintln(tail, "epoch 1: loss 0.41")

	trainErr := func() error {
		for step := 1; step <= 3; step++ {
			run.Metric(step, float64(step)/3, "train_loss", 1/float64(step))
		}
		return errors.New("CUDA out of memory")
	}()
	// One exit path: a non-nil error is recorded as a failure, never as success.
	run.End(trainErr, registry.Summary{CVF2: 0.6}, tail.Lines())

	rec, _ := db.Get(run.ID())
	fmt.Println(rec.Status, rec.Error, rec.LogTail)
	// Output: failed CUDA out of memory epoch 1: loss 0.41
}
