package train

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// Progress is the Observer that shows a run to a person: a live bar per
// epoch (loss, learning rate, images/s) redrawn in place on a terminal, or
// one structured key=value line per event otherwise, so that logs in a
// Kaggle kernel or CI stay readable.
type Progress struct {
	W        io.Writer
	Live     bool          // redraw a bar in place (a terminal)
	Every    time.Duration // log lines: at most one step line per interval
	lastLine time.Time
	lastBar  int
}

// NewProgress writes to w, with a live bar when w is a terminal.
func NewProgress(w io.Writer) *Progress {
	return &Progress{W: w, Live: isTerminal(w), Every: 10 * time.Second}
}

// isTerminal asks for Stat rather than an *os.File, so that it sees
// through a writer that wraps one (redact.Writer).
func isTerminal(w io.Writer) bool {
	f, ok := w.(interface{ Stat() (os.FileInfo, error) })
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func (p *Progress) OnStart(e StartEvent) {
	verb := "start"
	if e.Resumed {
		verb = "resume"
	}
	p.endBar()
	for _, s := range e.Skipped {
		fmt.Fprintf(p.W, "warning: skipped checkpoint %s; resuming from %s\n", s, e.ResumedFrom)
	}
	if e.WorldWas > 0 {
		fmt.Fprintf(p.W, "warning: the checkpoint was written by %d data-parallel process(es), this session has %d: the position carries over (global batches), but batch statistics and rounding differ from an uninterrupted run\n",
			e.WorldWas, max(e.World, 1))
	}
	from := ""
	if e.ResumedFrom != "" {
		from = " from=" + e.ResumedFrom
	}
	world := ""
	if e.World > 1 {
		world = fmt.Sprintf(" world=%d", e.World)
	}
	fmt.Fprintf(p.W, "event=%s run=%s fold=%d step=%d stages=%d train=%d val=%d device=%s precision=%s threads=%d%s%s\n",
		verb, e.RunDir, e.Fold, e.GlobalStep, e.Stages, e.TrainRows, e.ValRows, e.Device, e.Precision, e.Threads, world, from)
}

func (p *Progress) OnStep(e StepEvent) {
	if p.Live {
		const width = 30
		done := 0
		if e.Batches > 0 {
			done = width * e.Batch / e.Batches
		}
		line := fmt.Sprintf("\r%s e%d [%s%s] %d/%d loss %.4f lr %.2e %.1f img/s",
			e.StageName, e.Epoch+1, strings.Repeat("=", done), strings.Repeat(" ", width-done),
			e.Batch, e.Batches, e.Loss, e.LR, e.ImagesPerSec)
		if pad := p.lastBar - len(line); pad > 0 {
			line += strings.Repeat(" ", pad)
		}
		p.lastBar = len(line)
		io.WriteString(p.W, line)
		return
	}
	now := time.Now()
	if e.Batch != e.Batches && now.Sub(p.lastLine) < p.Every {
		return
	}
	p.lastLine = now
	scale := ""
	if e.LossScale > 0 {
		scale = fmt.Sprintf(" loss_scale=%g", e.LossScale)
		if e.Skipped {
			scale += " skipped=true"
		}
	}
	if e.World > 1 && e.StepTime > 0 {
		scale += fmt.Sprintf(" allreduce_share=%.2f", e.Comm.Seconds()/e.StepTime.Seconds())
	}
	fmt.Fprintf(p.W, "event=step stage=%s epoch=%d batch=%d/%d step=%d loss=%.5f lr=%.3e img_per_s=%.1f elapsed=%s%s\n",
		e.StageName, e.Epoch+1, e.Batch, e.Batches, e.GlobalStep, e.Loss, e.LR, e.ImagesPerSec, e.Elapsed.Round(time.Second), scale)
}

func (p *Progress) endBar() {
	if p.Live && p.lastBar > 0 {
		io.WriteString(p.W, "\n")
		p.lastBar = 0
	}
}

func (p *Progress) OnEpoch(e EpochEvent) {
	p.endBar()
	best := ""
	if e.Best {
		best = " best=true"
	}
	fmt.Fprintf(p.W, "event=validate stage=%s epoch=%d step=%d train_loss=%.5f val_loss=%.5f f2=%.5f threshold=%.2f%s\n",
		e.StageName, e.Epoch+1, e.GlobalStep, e.TrainLoss, e.ValLoss, e.F2, e.Threshold, best)
}

func (p *Progress) OnCheckpoint(e CheckpointEvent) {
	p.endBar()
	fmt.Fprintf(p.W, "event=checkpoint step=%d reason=%s path=%s\n", e.GlobalStep, e.Reason, e.Path)
}

func (p *Progress) OnFinish(e FinishEvent) {
	p.endBar()
	if e.Completed {
		fmt.Fprintf(p.W, "event=finish step=%d best_f2=%.5f outputs=%s\n", e.GlobalStep, e.BestF2, strings.Join(e.Outputs, ","))
		return
	}
	// Before the first validation there is no best F2 (it is -1 inside).
	best := "none"
	if e.BestF2 >= 0 {
		best = fmt.Sprintf("%.5f", e.BestF2)
	}
	reason := e.Reason
	if reason == "" {
		reason = "unknown"
	}
	fmt.Fprintf(p.W, "event=stopped step=%d best_f2=%s reason=%s\nresume with: %s\n", e.GlobalStep, best, reason, e.Resume)
}

func (p *Progress) OnFail(err error) {
	p.endBar()
	fmt.Fprintf(p.W, "event=fail error=%q\n", err.Error())
}
