package weights

import (
	"fmt"
	"regexp"
	"strings"

	"imet/internal/base/snippet"
)

// StripPrefix returns s with prefix removed from every key that has it
// (keys without it are kept as they are). StripPrefix(s, "module.") undoes
// what nn.DataParallel and DistributedDataParallel add to checkpoints.
func StripPrefix(s Set, prefix string) Set {
	out := make(Set, len(s))
	for k, v := range s {
		out[strings.TrimPrefix(k, prefix)] = v
	}
	return out
}

// Rename returns s with every key passed through f; a key f maps to "" is
// dropped. It fails if two keys map to the same name, so a mapping bug
// cannot silently lose a tensor.
func Rename(s Set, f func(string) string) (Set, error) {
	out := make(Set, len(s))
	from := map[string]string{}
	for _, k := range s.Names() {
		n := f(k)
		if n == "" {
			continue
		}
		if prev, ok := from[n]; ok {
			return nil, fmt.Errorf("keys %s and %s both map to %s", snippet.Quote(prev), snippet.Quote(k), snippet.Quote(n))
		}
		from[n] = k
		out[n] = s[k]
	}
	return out, nil
}

// densenetLegacy matches the pre-0.4 torchvision DenseNet names
// ("denselayer1.norm.1.weight"), which torchvision itself rewrites on load
// (to "denselayer1.norm1.weight"); the published densenet*.pth files use
// the old form.
var densenetLegacy = regexp.MustCompile(`^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var))$`)

// TorchvisionDenseNetKey rewrites one legacy DenseNet key the way
// torchvision's _load_state_dict does; other keys pass through.
func TorchvisionDenseNetKey(k string) string {
	if m := densenetLegacy.FindStringSubmatch(k); m != nil {
		return m[1] + m[2]
	}
	return k
}

// timmSEResNeXt rewrites timm's seresnext names into Cadene's.
var timmSEResNeXt = []struct {
	re   *regexp.Regexp
	repl string
}{
	{regexp.MustCompile(`^conv1\.`), "layer0.conv1."},
	{regexp.MustCompile(`^bn1\.`), "layer0.bn1."},
	{regexp.MustCompile(`^(layer\d+\.\d+)\.se\.fc([12])\.`), "${1}.se_module.fc${2}."},
	{regexp.MustCompile(`^fc\.`), "last_linear."},
}

// TimmToCadeneSEResNeXt renames a timm se_resnext50_32x4d /
// seresnext101_32x4d state dict (conv1, bn1, layerN.M.se.fc1, fc) into
// the names of Cadene's pretrainedmodels, which the zoo uses (layer0.conv1,
// layer0.bn1, layerN.M.se_module.fc1, last_linear). Squeeze-excitation
// weights stored as linear [out, in] matrices are reshaped to the 1x1
// convolutions [out, in, 1, 1] Cadene uses. Keys that are already in
// Cadene form pass through, so the function is safe on either.
func TimmToCadeneSEResNeXt(s Set) (Set, error) {
	out, err := Rename(s, func(k string) string {
		for _, r := range timmSEResNeXt {
			if r.re.MatchString(k) {
				return r.re.ReplaceAllString(k, r.repl)
			}
		}
		return k
	})
	if err != nil {
		return nil, err
	}
	for k, t := range out {
		if strings.Contains(k, ".se_module.fc") && strings.HasSuffix(k, ".weight") && len(t.Shape) == 2 {
			c := *t
			c.Shape = []int64{t.Shape[0], t.Shape[1], 1, 1}
			out[k] = &c
		}
	}
	return out, nil
}

// transposeND returns t with its axes permuted (perm[i] is the source axis
// of output axis i), as a new dense tensor.
func transposeND(t *Tensor, perm []int) *Tensor {
	nd := len(t.Shape)
	shape := make([]int64, nd)
	for i, p := range perm {
		shape[i] = t.Shape[p]
	}
	srcStride := make([]int64, nd)
	acc := int64(1)
	for i := nd - 1; i >= 0; i-- {
		srcStride[i] = acc
		acc *= t.Shape[i]
	}
	stride := make([]int64, nd)
	for i, p := range perm {
		stride[i] = srcStride[p]
	}
	out := make([]float32, len(t.Data))
	idx := make([]int64, nd)
	for i := range out {
		pos := int64(0)
		for d := range idx {
			pos += idx[d] * stride[d]
		}
		out[i] = t.Data[pos]
		for d := nd - 1; d >= 0; d-- {
			idx[d]++
			if idx[d] < shape[d] {
				break
			}
			idx[d] = 0
		}
	}
	return &Tensor{Shape: shape, DType: t.DType, Data: out}
}

// KerasConvToTorch turns a Keras Conv2D kernel (kh, kw, in, out) into
// PyTorch's (out, in, kh, kw).
func KerasConvToTorch(t *Tensor) *Tensor { return transposeND(t, []int{3, 2, 0, 1}) }

// KerasDepthwiseToTorch turns a Keras DepthwiseConv2D kernel
// (kh, kw, channels, multiplier) into PyTorch's grouped-convolution weight
// (channels*multiplier, 1, kh, kw); output channel c*multiplier+m reads
// input channel c in both frameworks.
func KerasDepthwiseToTorch(t *Tensor) *Tensor {
	kh, kw, c, m := t.Shape[0], t.Shape[1], t.Shape[2], t.Shape[3]
	p := transposeND(t, []int{2, 3, 0, 1}) // (c, m, kh, kw)
	p.Shape = []int64{c * m, 1, kh, kw}
	return p
}

// KerasDenseToTorch turns a Keras Dense kernel (in, out) into nn.Linear's
// (out, in).
func KerasDenseToTorch(t *Tensor) *Tensor { return transposeND(t, []int{1, 0}) }

// kerasBN maps Keras BatchNormalization weight names to PyTorch's.
var kerasBN = map[string]string{"gamma": "weight", "beta": "bias", "moving_mean": "running_mean", "moving_variance": "running_var"}

// KerasMobileNetV2ToTorchvision maps the Keras applications MobileNetV2
// (alpha 1.0) weights, as named in a tfjs or Keras file (Conv1, bn_Conv1,
// expanded_conv_*, block_N_{expand,depthwise,project}[_BN], Conv_1,
// Conv_1_bn), onto torchvision's mobilenet_v2 names (features.0.0,
// features.N.conv.M, features.18), transposing kernels. Dense layers on
// top, in the order of their Keras names' numbers (nsfwjs's head is
// dense_1, dense_2, dense_3): the last becomes classifier.1, torchvision's
// output layer, and those before it mlp.0, mlp.1, ..., the hidden layers
// of the zoo's mobilenet_v2 with MobileNetV2Config.Hidden.
//
// Two differences remain that weights alone cannot carry, and the zoo's
// mobilenet_v2 has options for both: Keras batch norm uses eps=1e-3 (not
// 1e-5), and Keras pads stride-2 convolutions by (0, 1) on each spatial
// axis instead of 1 on both sides.
func KerasMobileNetV2ToTorchvision(s Set) (Set, error) {
	out := Set{}
	var dense []string
	blockRe := regexp.MustCompile(`^block_(\d+)_(expand|depthwise|project)(_BN)?/(.+)$`)
	for _, k := range s.Names() {
		t := s[k]
		layer, param, _ := strings.Cut(k, "/")
		var name string
		var err error
		bnParam := func(prefix string) {
			if p, ok := kerasBN[param]; ok {
				name = prefix + "." + p
			} else {
				err = fmt.Errorf("%s: unknown batch-norm weight %q", k, param)
			}
		}
		switch {
		case layer == "Conv1" && param == "kernel":
			name, t = "features.0.0.weight", KerasConvToTorch(t)
		case layer == "bn_Conv1":
			bnParam("features.0.1")
		case layer == "expanded_conv_depthwise" && param == "depthwise_kernel":
			name, t = "features.1.conv.0.0.weight", KerasDepthwiseToTorch(t)
		case layer == "expanded_conv_depthwise_BN":
			bnParam("features.1.conv.0.1")
		case layer == "expanded_conv_project" && param == "kernel":
			name, t = "features.1.conv.1.weight", KerasConvToTorch(t)
		case layer == "expanded_conv_project_BN":
			bnParam("features.1.conv.2")
		case layer == "Conv_1" && param == "kernel":
			name, t = "features.18.0.weight", KerasConvToTorch(t)
		case layer == "Conv_1_bn":
			bnParam("features.18.1")
		case strings.HasPrefix(layer, "dense"):
			dense = append(dense, layer)
			continue
		default:
			m := blockRe.FindStringSubmatch(k)
			if m == nil {
				return nil, fmt.Errorf("%s: not a Keras MobileNetV2 weight", k)
			}
			var n int
			fmt.Sscan(m[1], &n)
			f := fmt.Sprintf("features.%d.conv.", n+1)
			slot := map[string]int{"expand": 0, "depthwise": 1, "project": 2}[m[2]]
			switch {
			case m[3] == "" && m[2] == "project":
				name, t = f+"2.weight", KerasConvToTorch(t)
			case m[3] == "" && m[2] == "depthwise":
				name, t = f+"1.0.weight", KerasDepthwiseToTorch(t)
			case m[3] == "":
				name, t = f+"0.0.weight", KerasConvToTorch(t)
			case m[2] == "project":
				bnParam(f + "3")
			default:
				bnParam(fmt.Sprintf("%s%d.1", f, slot))
			}
		}
		if err != nil {
			return nil, err
		}
		out[name] = t
	}
	// Dense layers: order by the number Keras appended to the layer name.
	layers := map[string]bool{}
	var order []string
	for _, l := range dense {
		if !layers[l] {
			layers[l] = true
			order = append(order, l)
		}
	}
	sortByTrailingNumber(order)
	for i, l := range order {
		prefix := fmt.Sprintf("mlp.%d.", i)
		if i == len(order)-1 {
			prefix = "classifier.1."
		}
		for _, p := range []string{"kernel", "bias"} {
			t, ok := s[l+"/"+p]
			if !ok {
				return nil, fmt.Errorf("%s/%s missing", l, p)
			}
			if p == "kernel" {
				out[prefix+"weight"] = KerasDenseToTorch(t)
			} else {
				out[prefix+"bias"] = t
			}
		}
	}
	return out, nil
}

func sortByTrailingNumber(names []string) {
	num := func(s string) int {
		i := len(s)
		for i > 0 && s[i-1] >= '0' && s[i-1] <= '9' {
			i--
		}
		n := 0
		fmt.Sscan(s[i:], &n)
		return n
	}
	for i := 1; i < len(names); i++ {
		for j := i; j > 0 && num(names[j]) < num(names[j-1]); j-- {
			names[j], names[j-1] = names[j-1], names[j]
		}
	}
}
