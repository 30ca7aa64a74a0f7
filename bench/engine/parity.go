package main

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"

	"imet/internal/engine/torch"
	"imet/internal/zoo/models"
)

// parityRef is what parity.py writes.
type parityRef struct {
	Arch        string             `json:"arch"`
	Device      string             `json:"device"`
	Torch       string             `json:"torch"`
	Batch       int                `json:"batch"`
	Size        int                `json:"size"`
	Classes     int                `json:"classes"`
	LogitsEval  []float64          `json:"logits_eval"`
	LogitsTrain []float64          `json:"logits_train"`
	LossTrain   float64            `json:"loss_train"`
	LossEval    float64            `json:"loss_eval"`
	GradL1      map[string]float64 `json:"grad_l1"`
}

// parityResult reports the largest relative errors against the reference.
type parityResult struct {
	Arch         string  `json:"arch"`
	Device       string  `json:"device"`
	EvalLogits   float64 `json:"eval_logits_rel_err"`
	TrainLogits  float64 `json:"train_logits_rel_err"`
	LossTrain    float64 `json:"loss_train_rel_err"`
	GradL1Worst  float64 `json:"grad_l1_worst_rel_err"`
	GradL1Param  string  `json:"grad_l1_worst_param"`
	Tolerance    float64 `json:"tolerance"`
	OK           bool    `json:"ok"`
	TorchPython  string  `json:"torch_python"`
	TorchImet    string  `json:"torch_imet"`
	LoadedParams int     `json:"loaded_tensors"`
}

// parityTol: on a GPU both sides run cuDNN, whose algorithm choice (and
// TF32 for convolutions, on by default in PyTorch and libtorch alike) moves
// results by about 1e-3 relative; larger is a bug, not rounding.
const parityTol = 5e-3

func relErrF(a []float32, b []float64) float64 {
	var d, m float64
	for i := range b {
		d = math.Max(d, math.Abs(float64(a[i])-b[i]))
		m = math.Max(m, math.Abs(b[i]))
	}
	if m == 0 {
		return d
	}
	return d / m
}

func runParity(arch, dir string) (parityResult, error) {
	var ref parityRef
	b, err := os.ReadFile(filepath.Join(dir, "io.json"))
	if err != nil {
		return parityResult{}, err
	}
	if err := json.Unmarshal(b, &ref); err != nil {
		return parityResult{}, fmt.Errorf("io.json: %w", err)
	}
	if ref.Arch != arch {
		return parityResult{}, fmt.Errorf("io.json is for %s, not %s", ref.Arch, arch)
	}
	unlock := torch.LockThread(0)
	defer unlock()
	m, err := models.New(arch, models.Options{NumClasses: ref.Classes})
	if err != nil {
		return parityResult{}, err
	}
	rep, err := models.LoadPretrained(m, arch, filepath.Join(dir, "weights.pth"), models.LoadConfig{})
	if err != nil {
		return parityResult{}, err
	}
	if len(rep.Missing)+len(rep.Unexpected) > 0 {
		return parityResult{}, fmt.Errorf("weights: %s", rep)
	}
	s := m.Store()
	if err := s.To(device); err != nil {
		return parityResult{}, err
	}
	res := parityResult{Arch: arch, Device: device.String(), Tolerance: parityTol, TorchPython: ref.Torch,
		TorchImet: torch.Version(), LoadedParams: len(rep.Loaded)}
	n := ref.Batch * 3 * ref.Size * ref.Size
	xs := make([]float32, n)
	for i := range xs {
		xs[i] = float32(math.Sin(0.1+0.31*float64(i)) * math.Cos(0.0007*float64(i)))
	}
	ys := make([]float32, ref.Batch*ref.Classes)
	for i := range ys {
		if (i*7)%3 == 0 {
			ys[i] = 1
		}
	}
	err = torch.Run(func() {
		x := torch.FromFloat32(xs, ref.Batch, 3, ref.Size, ref.Size).ToDevice(torch.Float32, device)
		y := torch.FromFloat32(ys, ref.Batch, ref.Classes).ToDevice(torch.Float32, device)
		s.Train(false)
		torch.NoGrad(func() {
			res.EvalLogits = relErrF(m.Forward(x).ToDevice(torch.Float32, torch.CPU).Float32s(), ref.LogitsEval)
		})
		s.Train(true)
		torch.NoGrad(func() {
			lt := m.Forward(x)
			res.TrainLogits = relErrF(lt.ToDevice(torch.Float32, torch.CPU).Float32s(), ref.LogitsTrain)
			l := torch.BCEWithLogits(lt, y, nil, nil, torch.ReduceMean).Item()
			res.LossTrain = math.Abs(l-ref.LossTrain) / math.Abs(ref.LossTrain)
		})
		s.Train(false)
		torch.BCEWithLogits(m.Forward(x), y, nil, nil, torch.ReduceMean).Backward()
		for name, want := range ref.GradL1 {
			v := s.Var(name)
			if v == nil || v.T.Grad() == nil {
				res.GradL1Worst, res.GradL1Param = math.Inf(1), name+" (missing)"
				return
			}
			got := v.T.Grad().Abs().Sum().Item()
			// Gradients that are zero in PyTorch (e.g. unused) compare
			// absolutely, the rest relatively.
			e := math.Abs(got-want) / math.Max(math.Abs(want), 1e-6)
			if e > res.GradL1Worst {
				res.GradL1Worst, res.GradL1Param = e, name
			}
		}
	})
	if err != nil {
		return res, err
	}
	res.OK = res.EvalLogits <= parityTol && res.TrainLogits <= parityTol && res.LossTrain <= parityTol && res.GradL1Worst <= 10*parityTol
	return res, nil
}
