package models

import (
	"encoding/json"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"testing"

	"imet/internal/engine/torch"
	"imet/internal/zoo/weights"
)

// assetsDir is where the pinned npm assets live: $IMET_ASSETS, or
// .cache/npm/node_modules at the repository root.
func assetsDir() string {
	if d := os.Getenv("IMET_ASSETS"); d != "" {
		return d
	}
	return filepath.Join("..", "..", "..", ".cache", "npm", "node_modules")
}

type nsfwjsExpected struct {
	FeatureStride int `json:"feature_stride"`
	Images        []struct {
		File            string    `json:"file"`
		Probabilities   []float64 `json:"probabilities"`
		FeaturesSampled []float64 `json:"features_sampled"`
		FeaturesMean    float64   `json:"features_mean"`
	} `json:"images"`
}

// The nsfwjs MobileNetV2 mapped onto the zoo's mobilenet_v2 must reproduce
// what nsfwjs itself (TensorFlow.js, CPU backend) computes on real emoji
// images: testdata/nsfwjs_expected.json, written once by
// scripts/golden/nsfwjs_expected.mjs. Both sides use the very same
// dequantised uint8 weights and the same float32 input, so what remains is
// float32 summation order inside ~53 layers (tfjs' naive loops against
// oneDNN's blocked kernels).
func TestNSFWJSReproducesTFJS(t *testing.T) {
	assets := assetsDir()
	dir := NSFWJSModelDir(assets)
	if _, err := os.Stat(dir); err != nil {
		t.Skipf("nsfwjs assets not installed (%v); run scripts/assets.sh or set IMET_ASSETS", err)
	}
	m, report, err := NewNSFWJS(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(report.Loaded) != 266 || len(report.Unexpected) != 0 || len(report.Reinitialised) != 0 {
		t.Fatalf("unexpected load report:\n%s", report)
	}
	// Measured: |dp| 1.3e-7, |d log p| 1.3e-5, features 1.3e-5. The bounds
	// leave ~10x headroom for other BLAS/oneDNN builds while still failing
	// on any real mapping error (torchvision padding instead of Keras',
	// or eps 1e-5, moves log-probabilities by more than 1).
	compareWithTFJS(t, m, assets, "testdata/nsfwjs_expected.json", NSFWJSSize, 1e-5, 1e-4, 1e-4)
}

// The same for nsfwjs' Keras InceptionV3 mapped onto the zoo's
// inception_v3 (testdata/nsfwjs_inception_expected.json, written by the
// same script with MODEL=InceptionV3).
func TestNSFWJSInceptionReproducesTFJS(t *testing.T) {
	assets := assetsDir()
	dir := NSFWJSInceptionDir(assets)
	if _, err := os.Stat(dir); err != nil {
		t.Skipf("nsfwjs assets not installed (%v); run scripts/assets.sh or set IMET_ASSETS", err)
	}
	if testing.Short() {
		t.Skip("InceptionV3 at 299px skipped in -short")
	}
	m, report, err := NewNSFWJSInception(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(report.Unexpected) != 0 || len(report.Reinitialised) != 0 {
		t.Fatalf("unexpected load report:\n%s", report)
	}
	compareWithTFJS(t, m, assets, "testdata/nsfwjs_inception_expected.json", NSFWJSInceptionSize, 1e-5, 1e-4, 1e-4)
}

// compareWithTFJS runs the fixture's images through m (an MLP-headed zoo
// model) with nsfwjs' preprocessing and compares probabilities, their logs
// and the pooled backbone features with what TensorFlow.js computed. Both
// sides use the very same dequantised weights and float32 input, so what
// remains is float32 summation order (tfjs' naive loops against oneDNN's
// blocked kernels).
func compareWithTFJS(t *testing.T, m Model, assets, fixture string, size int, tolP, tolLog, tolF float64) {
	t.Helper()
	raw, err := os.ReadFile(fixture)
	if err != nil {
		t.Fatal(err)
	}
	var want nsfwjsExpected
	if err := json.Unmarshal(raw, &want); err != nil {
		t.Fatal(err)
	}
	m.Store().Train(false)
	var batch []float32
	for _, im := range want.Images {
		f, err := os.Open(filepath.Join(assets, im.File))
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(f)
		f.Close()
		if err != nil {
			t.Fatalf("%s: %v", im.File, err)
		}
		batch = append(batch, NSFWJSInput(img, size)...)
	}
	n := len(want.Images)
	var probs, feats []float32
	var width int
	err = torch.Run(func() {
		torch.NoGrad(func() {
			x := torch.FromFloat32(batch, n, 3, size, size)
			probs = m.Forward(x).Softmax(1).Float32s()
			_, f := m.(*mlpClassifier).bb.Features(x)
			pooled := torch.AdaptiveAvgPool2d(f, 1, 1).Flatten(1, -1)
			width = pooled.Shape()[1]
			feats = pooled.Float32s()
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	var worstP, worstF, worstLog float64
	for i, im := range want.Images {
		for c, p := range im.Probabilities {
			got := float64(probs[i*5+c])
			worstP = math.Max(worstP, math.Abs(got-p))
			worstLog = math.Max(worstLog, math.Abs(math.Log(got)-math.Log(p)))
		}
		mean := 0.0
		for j := 0; j < width; j++ {
			mean += float64(feats[i*width+j])
		}
		mean /= float64(width)
		worstF = math.Max(worstF, math.Abs(mean-im.FeaturesMean)/math.Abs(im.FeaturesMean))
		for k, v := range im.FeaturesSampled {
			got := float64(feats[i*width+k*want.FeatureStride])
			worstF = math.Max(worstF, math.Abs(got-v)/math.Max(math.Abs(v), 0.05))
		}
		t.Logf("%s: go %v tfjs %v", filepath.Base(im.File), probs[i*5:i*5+5], im.Probabilities)
	}
	t.Logf("max |dp| %.2g, max |d log p| %.2g, max feature rel err %.2g", worstP, worstLog, worstF)
	if worstP > tolP || worstLog > tolLog || worstF > tolF {
		t.Errorf("outputs differ from tfjs: max |dp| %.2g, |d log p| %.2g, features %.2g", worstP, worstLog, worstF)
	}
}

// The documented fine-tuning path: nsfwjs' backbone into a model with
// another class count and the standard head.
func TestNSFWJSBackboneForFineTuning(t *testing.T) {
	dir := NSFWJSModelDir(assetsDir())
	if _, err := os.Stat(dir); err != nil {
		t.Skipf("nsfwjs assets not installed (%v)", err)
	}
	set, err := NSFWJSWeights(dir)
	if err != nil {
		t.Fatal(err)
	}
	m, err := NewMobileNetV2(MobileNetV2Config{KerasPadding: true, BNEps: 1e-3}, Options{NumClasses: 1103})
	if err != nil {
		t.Fatal(err)
	}
	r, err := LoadWeights(m, set, weights.LoadOptions{AllowUnexpected: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Loaded) != 260 || len(r.Unexpected) != 4 || len(r.Reinitialised) != 2 || len(r.Missing) != 0 {
		t.Errorf("report:\n%s", r)
	}
	want := set["features.18.1.running_var"].Data
	if got := m.Store().Var("features.18.1.running_var").T.Float32s(); !equal(got, want) {
		t.Error("backbone statistics not loaded")
	}
}
