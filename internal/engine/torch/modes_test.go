package torch_test

import (
	"testing"

	"imet/internal/engine/torch"
)

func TestThreadLocalModes(t *testing.T) {
	err := torch.Run(func() {
		x := torch.Randn(torch.Float32, torch.CPU, 4, 8)
		w := torch.Randn(torch.Float32, torch.CPU, 3, 8).SetRequiresGrad(true)
		if got := torch.Linear(x, w, nil).DType(); got != torch.Float32 {
			t.Errorf("plain linear gives %v", got)
		}
		torch.Autocast(func() {
			torch.Autocast(func() {})
			if got := torch.Linear(x, w, nil).DType(); got != torch.BFloat16 {
				t.Errorf("linear under (formerly nested) autocast gives %v, want bfloat16", got)
			}
		})
		if got := torch.Linear(x, w, nil).DType(); got != torch.Float32 {
			t.Errorf("autocast leaked: linear gives %v", got)
		}
		torch.NoGrad(func() {
			if torch.GradEnabled() {
				t.Error("grad enabled inside NoGrad")
			}
			if torch.Linear(x, w, nil).RequiresGrad() {
				t.Error("NoGrad result requires grad")
			}
		})
		torch.InferenceMode(func() {
			if torch.Linear(x, w, nil).RequiresGrad() {
				t.Error("InferenceMode result requires grad")
			}
		})
		if !torch.Linear(x, w, nil).RequiresGrad() {
			t.Error("grad mode not restored")
		}
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestThreadsSeedAndChannelsLast(t *testing.T) {
	unlock := torch.LockThread(2)
	defer unlock()
	if n := torch.NumThreads(); n != 2 {
		t.Errorf("NumThreads %d after LockThread(2)", n)
	}
	var a, b []float32
	err := torch.Run(func() {
		torch.ManualSeed(7)
		a = torch.Randn(torch.Float32, torch.CPU, 5).Float32s()
		torch.ManualSeed(7)
		b = torch.Randn(torch.Float32, torch.CPU, 5).Float32s()
		x := torch.Randn(torch.Float32, torch.CPU, 2, 3, 4, 5)
		if x.IsChannelsLast() || !x.ChannelsLast().IsChannelsLast() {
			t.Error("channels-last conversion not seen")
		}
		if got := x.ChannelsLast().Sub(x).Abs().Max().Item(); got != 0 {
			t.Errorf("channels-last changed values by %v", got)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("same seed, different draws: %v vs %v", a, b)
		}
	}
	if torch.CUDADeviceCount() < 0 {
		t.Fatal("negative device count")
	}
	t.Logf("libtorch %s, %d CUDA devices", torch.Version(), torch.CUDADeviceCount())
}

func TestKeepMovesOutOfScope(t *testing.T) {
	var kept, dropped *torch.Tensor
	s := torch.NewScope()
	kept = torch.Keep(torch.Ones(torch.Float32, torch.CPU, 2))
	dropped = torch.Ones(torch.Float32, torch.CPU, 2)
	s.Close()
	if err := torch.Catch(func() { kept.Sum().Item() }); err != nil {
		t.Fatalf("kept tensor unusable: %v", err)
	}
	if err := torch.Catch(func() { dropped.Sum() }); err == nil {
		t.Fatal("tensor survived its scope")
	}
	kept.Free()
}
