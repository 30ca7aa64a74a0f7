package models

import (
	"fmt"
	"image"
	"image/color"
	"os"
	"path/filepath"
	"strings"

	"imet/internal/zoo/weights"
)

// NSFWJSClasses are the outputs of the nsfwjs models, in order.
var NSFWJSClasses = []string{"Drawing", "Hentai", "Neutral", "Porn", "Sexy"}

// NSFWJSSize is the square input side nsfwjs' MobileNetV2 expects;
// NSFWJSInceptionSize its InceptionV3's.
const (
	NSFWJSSize          = 224
	NSFWJSInceptionSize = 299
)

// NSFWJSConfig is the zoo's mobilenet_v2 in the shape of the Keras
// MobileNetV2 inside npm nsfwjs: Keras padding and batch-norm epsilon, and
// nsfwjs' head (1280 -> 256 -> 128 -> 5, ReLU between).
var NSFWJSConfig = MobileNetV2Config{KerasPadding: true, BNEps: 1e-3, Hidden: []int{256, 128}}

// NSFWJSModelDir is where the nsfwjs MobileNetV2 lives inside an assets
// directory (a node_modules tree holding nsfwjs@4.4.0).
func NSFWJSModelDir(assets string) string {
	return filepath.Join(assets, "nsfwjs", "dist", "models", "mobilenet_v2")
}

// NewNSFWJS builds mobilenet_v2 with NSFWJSConfig and 5 outputs, and loads
// the tfjs weights at dir (see NSFWJSModelDir), dequantised and mapped by
// weights.KerasMobileNetV2ToTorchvision. Every tensor must fit: no head is
// re-initialised. The model outputs logits; nsfwjs reports their softmax.
// It is the only ImageNet-derived MobileNetV2 backbone reachable offline
// here, which makes it a real starting point for fine-tuning.
func NewNSFWJS(dir string) (Model, *weights.Report, error) {
	set, err := NSFWJSWeights(dir)
	if err != nil {
		return nil, nil, err
	}
	m, err := NewMobileNetV2(NSFWJSConfig, Options{NumClasses: len(NSFWJSClasses)})
	if err != nil {
		return nil, nil, err
	}
	// Strict: every tensor must fit, the head included ("-" matches no
	// name, so nothing may be re-initialised). Keras has no
	// num_batches_tracked counters; they stay at 0.
	r, err := LoadWeights(m, set, weights.LoadOptions{HeadPrefixes: []string{"-"}})
	if err != nil {
		return nil, r, fmt.Errorf("%s: %w", dir, err)
	}
	return m, r, nil
}

// NSFWJSWeights reads the nsfwjs MobileNetV2 at dir and maps it onto
// mobilenet_v2's names (features.*, mlp.0, mlp.1, classifier.1). To
// fine-tune its ImageNet-derived backbone on another task, load it with
// AllowUnexpected into NewMobileNetV2(MobileNetV2Config{KerasPadding: true,
// BNEps: 1e-3}, Options{NumClasses: n}): the backbone loads, the 5-class
// classifier.1 is re-initialised and the hidden mlp layers are skipped.
func NSFWJSWeights(dir string) (weights.Set, error) {
	if _, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("models: nsfwjs model: %w", err)
	}
	tf, err := weights.ReadTFJS(dir)
	if err != nil {
		return nil, err
	}
	set, err := weights.KerasMobileNetV2ToTorchvision(tf.Tensors)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	return set, nil
}

// NSFWJSInput turns an image into the NCHW float32 input (1, 3, n, n)
// that nsfwjs' infer() feeds its model (n is NSFWJSSize, or
// NSFWJSInceptionSize for the InceptionV3), computed the way TensorFlow.js'
// CPU backend does: the 8-bit RGB values (alpha ignored, not
// premultiplied) divided by 255, then, unless the image is already
// n x n, resized with tf.image.resizeBilinear(alignCorners=true): corner
// pixels map to corner pixels, and each output pixel interpolates its four
// neighbours at source position out*(in-1)/(out-1). No mean/std
// normalisation: the Keras model takes [0, 1] inputs.
func NSFWJSInput(img image.Image, n int) []float32 {
	b := img.Bounds()
	h, w := b.Dy(), b.Dx()
	src := make([]float32, h*w*3) // HWC, as tfjs holds it
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			r, g, bl := rgb8(img, b.Min.X+x, b.Min.Y+y)
			i := 3 * (y*w + x)
			src[i], src[i+1], src[i+2] = float32(r)/255, float32(g)/255, float32(bl)/255
		}
	}
	out := make([]float32, 3*n*n)
	if h == n && w == n {
		for i := 0; i < n*n; i++ {
			for c := 0; c < 3; c++ {
				out[c*n*n+i] = src[3*i+c]
			}
		}
		return out
	}
	ratio := func(in int) float64 { return float64(in-1) / float64(n-1) }
	ry, rx := ratio(h), ratio(w)
	for oy := 0; oy < n; oy++ {
		fy := ry * float64(oy)
		y0 := int(fy)
		dy := fy - float64(y0)
		y1 := min(h-1, y0+1)
		if dy == 0 {
			y1 = y0
		}
		for ox := 0; ox < n; ox++ {
			fx := rx * float64(ox)
			x0 := int(fx)
			dx := fx - float64(x0)
			x1 := min(w-1, x0+1)
			if dx == 0 {
				x1 = x0
			}
			for c := 0; c < 3; c++ {
				tl := float64(src[3*(y0*w+x0)+c])
				tr := float64(src[3*(y0*w+x1)+c])
				bl := float64(src[3*(y1*w+x0)+c])
				br := float64(src[3*(y1*w+x1)+c])
				top := tl + (tr-tl)*dx
				bot := bl + (br-bl)*dx
				out[c*n*n+oy*n+ox] = float32(top + (bot-top)*dy)
			}
		}
	}
	return out
}

// rgb8 reads the stored 8-bit RGB of a pixel, without the alpha
// premultiplication image.Image.At().RGBA() applies: tfjs' fromPixels
// takes the raw channels.
func rgb8(img image.Image, x, y int) (r, g, b uint8) {
	switch im := img.(type) {
	case *image.NRGBA:
		i := im.PixOffset(x, y)
		return im.Pix[i], im.Pix[i+1], im.Pix[i+2]
	case *image.RGBA:
		i := im.PixOffset(x, y)
		return im.Pix[i], im.Pix[i+1], im.Pix[i+2]
	}
	c := color.NRGBAModel.Convert(img.At(x, y)).(color.NRGBA)
	return c.R, c.G, c.B
}

// NSFWJSInceptionDir is where the nsfwjs InceptionV3 lives inside an
// assets directory.
func NSFWJSInceptionDir(assets string) string {
	return filepath.Join(assets, "nsfwjs", "dist", "models", "inception_v3")
}

// NSFWJSInceptionConfig is the zoo's inception_v3 in the shape of the
// Keras InceptionV3 inside nsfwjs: no input transform (nsfwjs feeds pixels
// /255), TensorFlow's pool-branch averaging, nsfwjs' head.
var NSFWJSInceptionConfig = InceptionV3Config{PoolExcludePad: true, Hidden: []int{256, 128}}

// NewNSFWJSInception builds inception_v3 with NSFWJSInceptionConfig and 5
// outputs and loads nsfwjs' Keras InceptionV3 (another ImageNet-derived
// backbone) into it. Keras numbers its layers in creation order
// (conv2d_1..94, batch_normalization_1..94), which is torchvision's module
// order, so the i-th Keras convolution is the model's i-th BasicConv2d;
// every shape is checked on load. Keras' batch norms have no scale
// (scale=False): their weight is set to 1.
func NewNSFWJSInception(dir string) (Model, *weights.Report, error) {
	if _, err := os.Stat(dir); err != nil {
		return nil, nil, fmt.Errorf("models: nsfwjs model: %w", err)
	}
	tf, err := weights.ReadTFJS(dir)
	if err != nil {
		return nil, nil, err
	}
	m, err := NewInceptionV3(NSFWJSInceptionConfig, Options{NumClasses: len(NSFWJSClasses)})
	if err != nil {
		return nil, nil, err
	}
	set, err := KerasToZoo("inception_v3", tf.Tensors, m)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", dir, err)
	}
	r, err := LoadWeights(m, set, weights.LoadOptions{HeadPrefixes: []string{"-"}})
	if err != nil {
		return nil, r, fmt.Errorf("%s: %w", dir, err)
	}
	return m, r, nil
}

// KerasToZoo maps a Keras model's tensors (as weights.ReadTFJS names
// them) onto the zoo's names for arch, mobilenet_v2 or inception_v3; m is
// the model they are for, whose module order numbers the Keras InceptionV3
// layers. Kernels are transposed to PyTorch's layouts.
func KerasToZoo(arch string, k weights.Set, m Model) (weights.Set, error) {
	switch arch {
	case "mobilenet_v2":
		return weights.KerasMobileNetV2ToTorchvision(k)
	case "inception_v3":
		return kerasInceptionToZoo(k, m)
	}
	return nil, fmt.Errorf("models: no Keras mapping for %s (have mobilenet_v2, inception_v3)", arch)
}

func kerasInceptionToZoo(k weights.Set, m Model) (weights.Set, error) {
	out := weights.Set{}
	i := 0
	for _, v := range m.Store().Vars() {
		if !strings.HasSuffix(v.Name, ".conv.weight") {
			continue
		}
		i++
		base := strings.TrimSuffix(v.Name, ".conv.weight")
		kern, ok := k[fmt.Sprintf("conv2d_%d/kernel", i)]
		if !ok {
			return nil, fmt.Errorf("conv2d_%d/kernel missing (for %s)", i, base)
		}
		out[v.Name] = weights.KerasConvToTorch(kern)
		bn := fmt.Sprintf("batch_normalization_%d/", i)
		for kn, tn := range map[string]string{"beta": "bias", "moving_mean": "running_mean", "moving_variance": "running_var"} {
			t, ok := k[bn+kn]
			if !ok {
				return nil, fmt.Errorf("%s%s missing (for %s)", bn, kn, base)
			}
			out[base+".bn."+tn] = t
		}
		beta := out[base+".bn.bias"]
		ones := make([]float32, len(beta.Data))
		for j := range ones {
			ones[j] = 1
		}
		out[base+".bn.weight"] = &weights.Tensor{Shape: beta.Shape, DType: weights.Float32, Data: ones}
	}
	for j, name := range []string{"mlp.0", "mlp.1", "fc"} {
		d := fmt.Sprintf("dense_%d/", j+1)
		w, ok1 := k[d+"kernel"]
		b, ok2 := k[d+"bias"]
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("%s weights missing", d)
		}
		out[name+".weight"] = weights.KerasDenseToTorch(w)
		out[name+".bias"] = b
	}
	if want := 94*4 + 6; len(k) != want || i != 94 {
		return nil, fmt.Errorf("%d Keras tensors and %d convolutions, want %d and 94", len(k), i, want)
	}
	return out, nil
}
