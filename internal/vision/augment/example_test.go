package augment_test

import (
	"fmt"
	"math/rand/v2"

	"imet/internal/base/config"
	"imet/internal/vision/augment"
	"imet/internal/vision/imageio"
)

// A chain built in Go: geometric ops become one affine resampling, colour
// ops and Normalize one fused pass. P is the probability of each op.
func ExampleNewChain() {
	chain, err := augment.NewChain(
		&augment.RandomResizedCrop{Height: 224, Width: 224, Scale: augment.Range{Lo: 0.3, Hi: 1}, Ratio: augment.Range{Lo: 3.0 / 4, Hi: 4.0 / 3}, P: 1},
		&augment.HorizontalFlip{P: 0.5},
		&augment.RandomBrightnessContrast{BrightnessLimit: augment.Sym(0.2), ContrastLimit: augment.Sym(0.2), BrightnessByMax: true, P: 0.5},
	)
	if err != nil {
		panic(err)
	}
	img := imageio.New(640, 480)
	// The same generator state gives the same sample: seed it per sample.
	out, w, h, err := chain.Apply(img, rand.New(rand.NewPCG(1, 2)), nil)
	if err != nil {
		panic(err)
	}
	fmt.Println(w, h, len(out))
	// Output: 224 224 150528
}

// The same from YAML, as in a pipeline file: parameters not given keep
// albumentations' defaults.
func ExampleSpec() {
	var cfg struct {
		Ops []augment.Spec `yaml:"ops"`
	}
	yaml := `
ops:
  - {op: SmallestMaxSize, max_size: 256}
  - {op: CenterCrop, height: 224, width: 224}
  - {op: ShiftScaleRotate, rotate_limit: 10}
  - {op: Normalize}
`
	if err := config.Decode("example.yaml", []byte(yaml), &cfg); err != nil {
		panic(err)
	}
	chain, err := augment.ChainOf(cfg.Ops)
	if err != nil {
		panic(err)
	}
	ssr := chain.Ops()[2].(*augment.ShiftScaleRotate)
	fmt.Println(ssr.RotateLimit, ssr.ScaleLimit, ssr.P)
	w, h, _ := chain.FixedSize()
	fmt.Println(w, h)
	// Output:
	// {-10 10} {-0.1 0.1} 0.5
	// 224 224
}
