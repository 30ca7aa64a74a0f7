package nn_test

import (
	"fmt"
	"math"
	"testing"

	"imet/internal/engine/nn"
	"imet/internal/engine/torch"
)

// Builders hand out PyTorch's state_dict names as layers are built.
func ExampleBuilder() {
	s := nn.NewStore()
	stem := s.Root().InGroup("stem")
	nn.Conv2d(stem.Sub("conv1"), 3, 8).Kernel(7).Stride(2).Padding(3).Done()
	nn.BatchNorm2d(stem.Sub("bn1"), 8).Done()
	d := s.Root().InGroup("stage1").Sub("layer1").SubIndex(0).Sub("downsample")
	nn.Conv2d(d.SubIndex(0), 8, 16).Kernel(1).Done()
	for _, v := range s.Vars() {
		fmt.Println(v.Name, v.T.Shape(), v.Group, v.Buffer)
	}
	// Output:
	// conv1.weight [8 3 7 7] stem false
	// bn1.weight [8] stem false
	// bn1.bias [8] stem false
	// bn1.running_mean [8] stem true
	// bn1.running_var [8] stem true
	// bn1.num_batches_tracked [] stem true
	// layer1.0.downsample.0.weight [16 8 1 1] stage1 false
}

func TestBatchNormModes(t *testing.T) {
	s := nn.NewStore()
	bn := nn.BatchNorm2d(s.Root().InGroup("g").Sub("bn"), 2).Done()
	x := torch.FromFloat32([]float32{1, 3, 5, 7, 10, 10, 20, 20}, 2, 2, 1, 2)
	err := torch.Run(func() {
		y := bn.Forward(x).Float32s() // training: batch statistics
		// channel 0 holds 1,3,10,10: mean 6; normalised values have mean 0.
		if m := (y[0] + y[1] + y[4] + y[5]) / 4; m > 1e-6 || m < -1e-6 {
			t.Errorf("training output channel mean %v", m)
		}
		rm := bn.RunningMean.T.Float32s()
		if fmt.Sprintf("%.2f", rm) != "[0.60 1.30]" { // 0.1 * batch means 6 and 13
			t.Errorf("running mean %v", rm)
		}
		s.Train(false)
		// eval: (x - running_mean)/sqrt(running_var + eps); running_var =
		// 0.9 + 0.1 * unbiased batch variance 22 = 3.1.
		y = bn.Forward(x).Float32s()
		if want := 0.4 / math.Sqrt(3.1+1e-5); math.Abs(float64(y[0])-want) > 1e-6 {
			t.Errorf("eval output %v, want %v", y[0], want)
		}
		if n := bn.NumBatches.T.Item(); n != 1 {
			t.Errorf("num_batches_tracked %v", n)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestDropoutFollowsModeAndFreeze(t *testing.T) {
	s := nn.NewStore()
	b := s.Root().InGroup("head")
	b.Param("w", torch.Zeros(torch.Float32, torch.CPU, 1))
	d := nn.Dropout(b, 0.5)
	x := torch.Ones(torch.Float32, torch.CPU, 1000)
	zeros := func() int {
		n := 0
		if err := torch.Run(func() {
			for _, v := range d.Forward(x).Float32s() {
				if v == 0 {
					n++
				}
			}
		}); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := zeros(); n < 400 || n > 600 {
		t.Errorf("training dropout zeroed %d of 1000", n)
	}
	s.Train(false)
	if n := zeros(); n != 0 {
		t.Errorf("eval dropout zeroed %d", n)
	}
	s.Train(true)
	if err := s.Freeze("head", true); err != nil {
		t.Fatal(err)
	}
	if n := zeros(); n != 0 {
		t.Errorf("frozen-group dropout zeroed %d", n)
	}
}

func TestSequentialFreesOnlyIntermediates(t *testing.T) {
	var mids []*torch.Tensor
	keep := nn.Func(func(x *torch.Tensor) *torch.Tensor { y := x.AddScalar(1); mids = append(mids, y); return y })
	seq := nn.Sequential{keep, keep, keep}
	x := torch.Zeros(torch.Float32, torch.CPU, 2)
	err := torch.Run(func() {
		y := seq.Forward(x)
		if got := y.Float32s(); got[0] != 3 {
			t.Errorf("result %v", got)
		}
		x.Sum() // the input survives
		for i, m := range mids[:2] {
			if torch.Catch(func() { m.Sum() }) == nil {
				t.Errorf("intermediate %d not freed", i)
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestChannelsLastKeepsValuesAndGrad(t *testing.T) {
	s := nn.NewStore()
	c := nn.Conv2d(s.Root().Sub("c"), 3, 4).Done()
	before := c.W.T.Float32s()
	if err := s.ChannelsLast(); err != nil {
		t.Fatal(err)
	}
	if !c.W.T.IsChannelsLast() || !c.W.T.RequiresGrad() {
		t.Fatal("weight not channels-last or lost requires_grad")
	}
	if fmt.Sprint(before) != fmt.Sprint(c.W.T.Float32s()) {
		t.Fatal("values changed")
	}
}
