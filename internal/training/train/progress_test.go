package train

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestProgressLogLines(t *testing.T) {
	var b bytes.Buffer
	p := &Progress{W: &b, Every: time.Hour}
	p.OnStart(StartEvent{RunDir: "runs/x", Fold: 2, TrainRows: 10, ValRows: 5, Device: "cpu", Threads: 2})
	p.OnStep(StepEvent{StageName: "head", Batch: 1, Batches: 3, GlobalStep: 1, Loss: 0.5, LR: 1e-3})
	p.OnStep(StepEvent{StageName: "head", Batch: 2, Batches: 3, GlobalStep: 2, Loss: 0.4, LR: 1e-3}) // throttled
	p.OnStep(StepEvent{StageName: "head", Batch: 3, Batches: 3, GlobalStep: 3, Loss: 0.3, LR: 1e-3}) // epoch end: shown
	p.OnEpoch(EpochEvent{StageName: "head", F2: 0.61234, Threshold: 0.2, Best: true})
	p.OnFinish(FinishEvent{Resume: "imet train --resume runs/x", GlobalStep: 3, Reason: "SIGTERM"})
	p.OnFail(errors.New("disk full"))
	got := b.String()
	for _, want := range []string{
		"event=start run=runs/x fold=2",
		"event=step stage=head epoch=1 batch=1/3 step=1 loss=0.50000 lr=1.000e-03",
		"batch=3/3 step=3",
		"event=validate stage=head epoch=1 step=0 train_loss=0.00000 val_loss=0.00000 f2=0.61234 threshold=0.20 best=true",
		"event=stopped step=3 best_f2=0.00000 reason=SIGTERM\n",
		"resume with: imet train --resume runs/x",
		`event=fail error="disk full"`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q in:\n%s", want, got)
		}
	}
	if strings.Contains(got, "batch=2/3") {
		t.Errorf("a step line within the interval was not throttled:\n%s", got)
	}
	if strings.Contains(got, "\r") {
		t.Errorf("carriage return in log lines")
	}
}

func TestProgressLiveBar(t *testing.T) {
	var b bytes.Buffer
	p := &Progress{W: &b, Live: true}
	p.OnStep(StepEvent{StageName: "all", Batch: 5, Batches: 10, Loss: 0.25, LR: 2e-4, ImagesPerSec: 123.4})
	p.OnEpoch(EpochEvent{StageName: "all", F2: 0.5})
	got := b.String()
	if !strings.HasPrefix(got, "\rall e1 [===============               ] 5/10 loss 0.2500 lr 2.00e-04 123.4 img/s\n") {
		t.Fatalf("bar: %q", got)
	}
}
