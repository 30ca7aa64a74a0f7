package trainconfig

import (
	"fmt"
	"runtime"

	"imet/internal/base/config"
	"imet/internal/base/procenv"
	"imet/internal/engine/torch"
	"imet/internal/vision/pipeline"
	"imet/internal/zoo/models"
)

// The thread bounds CheckResources holds a configuration to, per CPU of
// the machine that checks it. Beyond a few threads per core libtorch only
// loses time to switching, and engine.threads: 100000 made it die creating
// them; decoding goroutines wait on the disk as well as the CPU, so they
// get more room.
const (
	MaxThreadsPerCPU = 4
	MaxWorkersPerCPU = 16
)

// Machine is what CheckResources measures a configuration against.
type Machine struct {
	CPUs int
	// MemAvailable is the memory that can be allocated without swapping,
	// in bytes; 0 when unknown, which skips the memory estimates.
	MemAvailable int64
}

// ThisMachine is the machine the process runs on.
func ThisMachine() Machine {
	m := Machine{CPUs: runtime.NumCPU()}
	if n, ok := procenv.MemAvailable(); ok {
		m.MemAvailable = n
	}
	return m
}

// LoadChecked is Load followed by every check that does not need the data
// set itself: the files the configuration names (CheckFiles) and what the
// machine can run (CheckResources). `imet config check`, train and cv all
// load through it, so training never fails on a setting the check
// accepted.
func LoadChecked(path string) (Run, error) {
	data, err := config.ReadFile(path)
	if err != nil {
		return Run{}, err
	}
	return ParseChecked(path, data, ThisMachine())
}

// ParseChecked is LoadChecked for a configuration in memory, checked
// against machine m.
func ParseChecked(name string, data []byte, m Machine) (Run, error) {
	r, err := Parse(name, data)
	if err != nil {
		return Run{}, err
	}
	pcfg, err := r.pipelines()
	if err == nil {
		err = r.CheckResources(m, pcfg)
	}
	if err == nil {
		err = r.Model.CheckPretrained()
	}
	if err == nil {
		err = r.Targets.checkFiles()
	}
	if err != nil {
		return Run{}, locate(name, data, err)
	}
	return r, nil
}

// CheckResources refuses settings this machine cannot run: more libtorch
// threads than MaxThreadsPerCPU or decoding workers than MaxWorkersPerCPU
// per CPU, and on the CPU device a training or validation batch whose
// estimated memory (models.ActivationBytes for the architecture at the
// pipeline's output size, plus the input batch) exceeds what is available.
// The estimate is a scale, measured once per architecture; it refuses
// what cannot fit by far (validation.batch_size: 1e8), not what is tight.
// A GPU's memory is not queried: on CUDA devices only the thread bounds
// apply. pcfg is the pipelines file's content (nil: none).
func (r *Run) CheckResources(m Machine, pcfg *pipeline.Config) error {
	if m.CPUs > 0 {
		if n := r.Engine.Threads; n > MaxThreadsPerCPU*m.CPUs {
			return &KeyError{Key: "engine.threads", Msg: fmt.Sprintf("%d threads on a machine with %d CPUs: at most %d (%d per CPU) are accepted; 0 uses one per core", n, m.CPUs, MaxThreadsPerCPU*m.CPUs, MaxThreadsPerCPU)}
		}
		if n := r.Data.Workers; n > MaxWorkersPerCPU*m.CPUs {
			return &KeyError{Key: "data.workers", Msg: fmt.Sprintf("%d decoding workers on a machine with %d CPUs: at most %d (%d per CPU) are accepted; 0 uses one per core", n, m.CPUs, MaxWorkersPerCPU*m.CPUs, MaxWorkersPerCPU)}
		}
	}
	dev, err := torch.ParseDevice(r.Engine.Device)
	if err != nil || dev.IsCUDA() || m.MemAvailable <= 0 {
		return nil
	}
	p, err := pipeline.Get(r.Data.Pipeline, pcfg)
	if err != nil {
		return &KeyError{Key: "data.pipeline", Msg: err.Error()}
	}
	check := func(key string, train bool, batch int, w, h int) error {
		act, ok := models.ActivationBytes(r.Model.Arch, train, batch, h, w)
		if !ok {
			return nil
		}
		input := 4 * 3 * float64(batch) * float64(h) * float64(w)
		if need := act + input; need > float64(m.MemAvailable) {
			what := "forward pass"
			if train {
				what = "training step (forward and backward)"
			}
			return &KeyError{Key: key, Msg: fmt.Sprintf("%d images of %dx%d: one %s of %s needs about %s (%s of activations, estimated from %s's measured bytes per sample and pixel, and %s of input), more than the %s this machine has available (MemAvailable); lower it",
				batch, w, h, what, r.Model.Arch, procenv.FormatBytes(need), procenv.FormatBytes(act), r.Model.Arch, procenv.FormatBytes(input), procenv.FormatBytes(float64(m.MemAvailable)))}
		}
		return nil
	}
	if w, h, ok := p.Eval.FixedSize(); ok {
		if err := check("validation.batch_size", false, r.Validation.BatchSize, w, h); err != nil {
			return err
		}
	}
	if w, h, ok := p.Train.FixedSize(); ok {
		for i, s := range r.Stages {
			if err := check(fmt.Sprintf("stages[%d].batch_size", i), true, s.BatchSize, w, h); err != nil {
				return err
			}
		}
	}
	return nil
}
