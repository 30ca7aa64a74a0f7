package train

import "time"

// Observer receives a run's events. The run registry, notifications and
// the progress display are observers; the trainer knows none of them.
// Methods are called on the training goroutine and should return quickly.
type Observer interface {
	OnStart(StartEvent)
	OnStep(StepEvent)
	OnEpoch(EpochEvent)
	OnCheckpoint(CheckpointEvent)
	OnFinish(FinishEvent)
	OnFail(error)
}

// StartEvent opens a session (a fresh run or a resumed one).
type StartEvent struct {
	RunDir     string
	Fold       int
	Resumed    bool
	GlobalStep int64 // where the session starts
	Stages     int
	TrainRows  int
	ValRows    int
	Device     string // cpu or cuda:N
	Precision  string // fp32, bf16 or fp16
	Threads    int
	// World is the number of data-parallel processes (1: one process);
	// WorldWas, when not 0, the number that wrote the checkpoint resumed
	// from, which differed.
	World, WorldWas int

	// ResumedFrom is the checkpoint a resumed session continues from;
	// Skipped the newer ones it passed over ("path: why"), newest first.
	ResumedFrom string
	Skipped     []string
}

// StepEvent follows each optimizer step.
type StepEvent struct {
	Stage, Epoch int
	StageName    string
	Batch        int // batches done in the epoch
	Batches      int // batches in the epoch
	GlobalStep   int64
	Loss         float64 // mean loss over the step's micro-batches
	LR           float64 // rate of the last (head) group
	ImagesPerSec float64 // over the session so far
	Elapsed      time.Duration
	// LossScale is the fp16 loss scale after the step (0 without loss
	// scaling); Skipped says the update was skipped for inf or NaN
	// gradients.
	LossScale float64
	Skipped   bool
	// World is the number of data-parallel processes; StepTime the step's
	// wall time (all its micro-batches), Comm the part of it spent in the
	// step's collectives (gradient all-reduce, buffer broadcast; 0 in one
	// process).
	World    int
	StepTime time.Duration
	Comm     time.Duration
}

// EpochEvent follows each validation.
type EpochEvent struct {
	Stage, Epoch int
	StageName    string
	GlobalStep   int64
	TrainLoss    float64
	ValLoss      float64
	F2           float64
	Threshold    float64
	Best         bool
}

// CheckpointEvent follows each checkpoint write.
type CheckpointEvent struct {
	Path       string
	GlobalStep int64
	Reason     string // "every", "stage", or why the session stopped: "budget", "signal"
}

// FinishEvent closes a session that ended normally.
type FinishEvent struct {
	Completed bool   // every stage done; false when the session stopped early
	Resume    string // command that continues the run, when not completed
	// Reason says why it stopped early: "time-budget", the signal
	// ("SIGTERM", "SIGINT"), or "cancelled" (the caller's context).
	Reason     string
	BestF2     float64
	GlobalStep int64
	Outputs    []string // OOF and test probability files written
}

// Observers fans events out to several observers.
type Observers []Observer

func (o Observers) OnStart(e StartEvent) {
	for _, x := range o {
		x.OnStart(e)
	}
}
func (o Observers) OnStep(e StepEvent) {
	for _, x := range o {
		x.OnStep(e)
	}
}
func (o Observers) OnEpoch(e EpochEvent) {
	for _, x := range o {
		x.OnEpoch(e)
	}
}
func (o Observers) OnCheckpoint(e CheckpointEvent) {
	for _, x := range o {
		x.OnCheckpoint(e)
	}
}
func (o Observers) OnFinish(e FinishEvent) {
	for _, x := range o {
		x.OnFinish(e)
	}
}
func (o Observers) OnFail(err error) {
	for _, x := range o {
		x.OnFail(err)
	}
}
