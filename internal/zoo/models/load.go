package models

import (
	"fmt"
	"strings"

	"imet/internal/engine/torch"
	"imet/internal/zoo/weights"
)

// LoadWeights copies a weight set into m. The whole set is checked against
// the model first (weights.Plan) and nothing is copied unless it fits, so a
// wrong file never leaves a half-loaded model. Head tensors whose shape
// differs from the model's (another class count) are left at their fresh
// initialisation and listed in the report; when opts.HeadPrefixes is
// empty, the tensors of m's "head" layer group are the head.
//
// The report lists what was loaded, missing, unexpected, mis-shaped and
// re-initialised; print it for the user even when err is nil.
func LoadWeights(m Model, set weights.Set, opts weights.LoadOptions) (*weights.Report, error) {
	r, err := PlanWeights(m, set, opts)
	if err != nil {
		return r, err
	}
	return r, CopyWeights(m, set, r)
}

// PlanWeights is LoadWeights without the copy: the report of what loading
// set into m would do, and the error LoadWeights would return.
func PlanWeights(m Model, set weights.Set, opts weights.LoadOptions) (*weights.Report, error) {
	s := m.Store()
	shapes := map[string][]int64{}
	for _, v := range s.Vars() {
		var sh []int64
		for _, d := range v.T.Shape() {
			sh = append(sh, int64(d))
		}
		if sh == nil {
			sh = []int64{}
		}
		shapes[v.Name] = sh
	}
	if len(opts.HeadPrefixes) == 0 {
		for _, v := range s.Vars() {
			if v.Group == "head" {
				opts.HeadPrefixes = append(opts.HeadPrefixes, v.Name)
			}
		}
	}
	r := weights.Plan(shapes, set, opts)
	return r, r.Err()
}

// CopyWeights copies the tensors a PlanWeights report loads from set into m.
func CopyWeights(m Model, set weights.Set, r *weights.Report) error {
	s := m.Store()
	err := torch.Catch(func() {
		torch.NoGrad(func() {
			for _, name := range r.Loaded {
				t := set[name]
				dims := make([]int, len(t.Shape))
				for i, d := range t.Shape {
					dims[i] = int(d)
				}
				src := torch.FromFloat32(t.Data, dims...)
				s.Var(name).T.CopyFrom(src)
				src.Free()
			}
		})
	})
	if err != nil {
		return fmt.Errorf("models: copying weights: %w", err)
	}
	return nil
}

// LoadConfig says where a pretrained file's names come from.
type LoadConfig struct {
	weights.LoadOptions
	// From names the implementation whose key names the file uses
	// ("timm"); empty means the architecture's own Source. The registry
	// entry's KeyMaps[From] translates the keys; keys it rejects are
	// dropped.
	From string
}

// LoadPretrained reads a weight file of any supported format (see
// weights.Load), prepares its keys with PrepareKeys, and loads the result
// into m, which must have been built as arch.
func LoadPretrained(m Model, arch, path string, cfg LoadConfig) (*weights.Report, error) {
	set, err := weights.Load(path)
	if err != nil {
		return nil, err
	}
	set, err = PrepareKeys(arch, set, cfg.From)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	r, err := LoadWeights(m, set, cfg.LoadOptions)
	if err != nil {
		return r, fmt.Errorf("%s into %s: %w", path, arch, err)
	}
	return r, nil
}

// PrepareKeys turns a weight file's keys into arch's: it removes a
// "module." prefix that every key carries (DataParallel checkpoints), then
// applies the registry's key map for from (empty: the architecture's own
// Source, e.g. torchvision's DenseNet legacy names, or inception's
// AuxLogits, which are dropped). Keys a map rejects are dropped.
func PrepareKeys(arch string, set weights.Set, from string) (weights.Set, error) {
	spec, ok := Lookup(arch)
	if !ok {
		return nil, fmt.Errorf("models: unknown architecture %q", arch)
	}
	if allPrefixed(set, "module.") {
		set = weights.StripPrefix(set, "module.")
	}
	explicit := from != "" && from != spec.Source
	if from == "" {
		from = spec.Source
	}
	km, ok := spec.KeyMaps[from]
	if !ok {
		if explicit {
			return nil, fmt.Errorf("models: %s has no key mapping from %q (have %v)", arch, from, keysOf(spec.KeyMaps))
		}
		return set, nil
	}
	return weights.Rename(set, func(k string) string {
		if n, ok := km(k); ok {
			return n
		}
		return ""
	})
}

func keysOf(m map[string]func(string) (string, bool)) []string {
	var o []string
	for k := range m {
		o = append(o, k)
	}
	return o
}

func allPrefixed(s weights.Set, p string) bool {
	if len(s) == 0 {
		return false
	}
	for k := range s {
		if !strings.HasPrefix(k, p) {
			return false
		}
	}
	return true
}

// StateSet copies every tensor of m (parameters and buffers) into a host
// Set under m's names, as a weight file holding exactly this model reads:
// float32, BatchNorm counters marked Int64. It writes stand-in weight
// files and exports.
func StateSet(m Model) (weights.Set, error) {
	set := weights.Set{}
	err := torch.Catch(func() {
		for _, v := range m.Store().Vars() {
			sh := []int64{}
			for _, d := range v.T.Shape() {
				sh = append(sh, int64(d))
			}
			dt := weights.Float32
			if v.T.DType() == torch.Int64 {
				dt = weights.Int64
			}
			f := v.T.To(torch.Float32)
			set[v.Name] = &weights.Tensor{Shape: sh, DType: dt, Data: f.Float32s()}
			if f != v.T {
				f.Free()
			}
		}
	})
	return set, err
}
