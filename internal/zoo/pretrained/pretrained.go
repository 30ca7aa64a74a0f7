// Package pretrained resolves a run's starting weights (model.pretrained):
// it reads every weight source imet knows — torchvision and Cadene .pth
// files, timm safetensors, Keras models converted to TensorFlow.js (the
// nsfwjs MobileNetV2 and InceptionV3), and a previous imet run directory or
// checkpoint — maps the file's names onto a zoo architecture, with the
// mapping named or picked automatically, and loads them. A source that
// maps no tensor is an error, so that a run never starts from random
// weights while its configuration names a file.
package pretrained

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"imet/internal/training/checkpoint"
	"imet/internal/zoo/models"
	"imet/internal/zoo/weights"
)

// The mappings (model.from). Auto (or empty) picks one from the source.
const (
	FromAuto        = "auto"
	FromTorchvision = "torchvision"
	FromCadene      = "cadene"
	FromTimm        = "timm"
	FromKeras       = "keras"
	FromImet        = "imet"
)

var fromDoc = map[string]string{
	FromAuto:        "pick the mapping from the source: an imet run or checkpoint, a Keras tfjs directory, else the one of the names below that loads",
	FromTorchvision: "torchvision's names (resnet*, densenet*, mobilenet_v2, inception_v3 .pth files)",
	FromCadene:      "Cadene pretrainedmodels' names (se_resnext* .pth files)",
	FromTimm:        "timm's names (se_resnext* model.safetensors)",
	FromKeras:       "a Keras model converted to TensorFlow.js (nsfwjs' mobilenet_v2 and inception_v3 directories); needs model.variant keras",
	FromImet:        "an imet run directory (its best checkpoint) or checkpoint file: continue fine-tuning your own model",
}

// Froms is every accepted model.from, auto first.
func Froms() []string {
	return []string{FromAuto, FromTorchvision, FromCadene, FromTimm, FromKeras, FromImet}
}

// FromDoc says what a mapping name means.
func FromDoc(name string) string { return fromDoc[name] }

// CheckFrom reports whether name is a mapping (empty reads as auto).
func CheckFrom(name string) error {
	if name == "" || fromDoc[name] != "" {
		return nil
	}
	return fmt.Errorf("unknown mapping %q (want one of %s)", name, strings.Join(Froms(), ", "))
}

// ErrMapping and ErrVariant mark the errors that model.from and
// model.variant, rather than the file, are at fault for.
var (
	ErrMapping = errors.New("mapping")
	ErrVariant = errors.New("variant")
)

// blame wraps err so that errors.Is(err, kind) holds, keeping its text.
func blame(kind error, err error) error { return &blamed{kind, err} }

type blamed struct{ kind, err error }

func (b *blamed) Error() string        { return b.err.Error() }
func (b *blamed) Is(target error) bool { return target == b.kind }

// Source is where a model's starting weights come from.
type Source struct {
	// Path is a weight file, a tfjs model directory, an imet run
	// directory or an imet checkpoint file.
	Path string
	// From names the mapping (Froms); empty or auto picks it.
	From string
}

// Result is what loading a source did.
type Result struct {
	// From is the mapping used; Auto says it was picked, Tried what each
	// other candidate would have loaded.
	From   string
	Auto   bool
	Tried  []string
	Report *weights.Report
	// Checkpoint is the imet checkpoint file read, for an imet source.
	Checkpoint string
}

// String is the report to show the user.
func (r *Result) String() string {
	var b strings.Builder
	how := "as named"
	if r.Auto {
		how = "picked automatically"
	}
	fmt.Fprintf(&b, "mapping %s (%s)", r.From, how)
	if r.Checkpoint != "" {
		fmt.Fprintf(&b, " from %s", r.Checkpoint)
	}
	if len(r.Tried) > 0 {
		fmt.Fprintf(&b, "; also tried: %s", strings.Join(r.Tried, "; "))
	}
	if r.Report != nil {
		b.WriteString("\n" + r.Report.String())
	}
	return b.String()
}

// Load reads src, maps it onto arch (the architecture m was built as,
// with opts.Variant) and copies it into m. Nothing is copied unless the
// whole mapped file fits (models.LoadWeights); tensors the model has no
// place for (a Keras head's hidden layers, another run's extra outputs)
// are skipped and listed, model tensors the file lacks are an error
// listing every one, and a mapping that loads no tensor is an error too.
func Load(m models.Model, arch string, opts models.Options, src Source) (*Result, error) {
	cands, err := candidates(arch, opts, src)
	if err != nil {
		return nil, err
	}
	auto := src.From == "" || src.From == FromAuto
	var best *attempt
	var tried []string
	for _, from := range cands {
		a := try(m, arch, src.Path, from)
		if a.err == nil {
			res := &Result{From: from, Auto: auto, Tried: tried, Report: a.report, Checkpoint: a.ckpt}
			if err := models.CopyWeights(m, a.set, a.report); err != nil {
				return res, err
			}
			return res, nil
		}
		tried = append(tried, fmt.Sprintf("%s: %s", from, a.summary()))
		if best == nil || a.loaded() > best.loaded() {
			best = a
		}
	}
	res := &Result{From: best.from, Auto: auto, Tried: tried, Report: best.report, Checkpoint: best.ckpt}
	if len(cands) == 1 {
		res.Tried = nil
	}
	return res, fmt.Errorf("%s does not load into %s: %w", src.Path, arch, best.err)
}

// Check builds arch with opts and loads src into it, as a training run
// would, so that a source that does not fit is refused before training.
func Check(arch string, opts models.Options, src Source) (*Result, error) {
	m, err := models.New(arch, opts)
	if err != nil {
		return nil, err
	}
	return Load(m, arch, opts, src)
}

// candidates lists the mappings to try for src, in order.
func candidates(arch string, opts models.Options, src Source) ([]string, error) {
	if err := CheckFrom(src.From); err != nil {
		return nil, blame(ErrMapping, err)
	}
	if _, err := os.Stat(src.Path); err != nil {
		return nil, fmt.Errorf("pretrained weights: %w", err)
	}
	spec, ok := models.Lookup(arch)
	if !ok {
		return nil, models.Check(arch)
	}
	native := nativeFrom(spec)
	var names []string // the key-name mappings this architecture has
	names = append(names, native)
	for k := range spec.KeyMaps {
		if k != native && k != spec.Source {
			names = append(names, k)
		}
	}
	sort.Strings(names[1:])
	_, hasKeras := spec.Variants[models.VariantKeras]
	from := src.From
	if from == "" || from == FromAuto {
		switch {
		case isImet(src.Path):
			from = FromImet
		case isTFJS(src.Path):
			from = FromKeras
		case opts.Variant == models.VariantKeras:
			return nil, blame(ErrVariant, fmt.Errorf("%s: model.variant keras is the network Keras weights need, and this is not a Keras model: leave the variant out", src.Path))
		default:
			return names, nil
		}
	}
	switch from {
	case FromImet:
	case FromKeras:
		if !hasKeras {
			return nil, fmt.Errorf("%s: a Keras model, and %s has no Keras mapping (mobilenet_v2 and inception_v3 have)", src.Path, arch)
		}
		if opts.Variant != models.VariantKeras {
			return nil, fmt.Errorf("%s: Keras weights load into %s only as built by Keras: set model.variant: keras (%s)", src.Path, arch, spec.Variants[models.VariantKeras])
		}
	default:
		if !slices.Contains(names, from) {
			return nil, blame(ErrMapping, fmt.Errorf("%s has no mapping from %s names (have %s, %s, %s)", arch, from, strings.Join(names, ", "), FromKeras+" where a Keras variant exists", FromImet))
		}
	}
	if opts.Variant == models.VariantKeras && from != FromKeras && from != FromImet {
		return nil, blame(ErrVariant, fmt.Errorf("%s: model.variant keras is the network Keras weights need, not %s's: leave it out for %s weights", src.Path, from, from))
	}
	return []string{from}, nil
}

// nativeFrom is the mapping name of the architecture's own key names.
func nativeFrom(s models.Spec) string {
	if strings.Contains(s.Source, "Cadene") {
		return FromCadene
	}
	return FromTorchvision
}

// ckptMagic starts every imet checkpoint file.
const ckptMagic = "IMETCKPT1\n"

// IsImet says whether path is an imet run directory or checkpoint file.
func IsImet(path string) bool { return isImet(path) }

// IsKeras says whether path is a TensorFlow.js (Keras) model, which the
// keras mapping reads.
func IsKeras(path string) bool { return isTFJS(path) }

func isImet(path string) bool {
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		_, err := os.Stat(filepath.Join(path, "checkpoints", "index.json"))
		return err == nil
	}
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	head := make([]byte, len(ckptMagic))
	n, _ := io.ReadFull(f, head)
	return bytes.Equal(head[:n], []byte(ckptMagic))
}

func isTFJS(path string) bool {
	f, err := weights.Detect(path)
	return err == nil && f == weights.FormatTFJS
}

// attempt is one mapping tried.
type attempt struct {
	from   string
	set    weights.Set
	report *weights.Report
	ckpt   string
	err    error
}

func (a *attempt) loaded() int {
	if a.report == nil {
		return -1
	}
	return len(a.report.Loaded)
}

func (a *attempt) summary() string {
	if a.report == nil {
		return a.err.Error()
	}
	r := a.report
	return fmt.Sprintf("%d tensors loaded, %d missing, %d mis-shaped", len(r.Loaded), len(r.Missing), len(r.Mismatched))
}

// try maps path with from and plans the load into m, copying nothing.
func try(m models.Model, arch, path, from string) *attempt {
	a := &attempt{from: from}
	var set weights.Set
	var err error
	switch from {
	case FromImet:
		set, a.ckpt, err = readImet(path)
	case FromKeras:
		if set, err = weights.Load(path); err == nil {
			set, err = models.KerasToZoo(arch, set, m)
		}
	default:
		if set, err = weights.Load(path); err == nil {
			spec, _ := models.Lookup(arch)
			key := from
			if from == nativeFrom(spec) {
				key = ""
			}
			set, err = models.PrepareKeys(arch, set, key)
		}
	}
	if err != nil {
		a.err = err
		return a
	}
	a.set = set
	a.report, a.err = models.PlanWeights(m, set, weights.LoadOptions{AllowUnexpected: true})
	if r := a.report; len(r.Loaded) == 0 {
		// The full report would list every tensor on both sides; a few
		// of each say why none matched.
		var names []string
		for _, v := range m.Store().Vars() {
			names = append(names, v.Name)
		}
		a.err = fmt.Errorf("%s names map no tensor onto the model (0 of %d loaded, %d mis-shaped): the model's names are like %s; the file's, mapped, like %s (imet weights inspect --names lists them)",
			from, len(names), len(r.Mismatched), sample(names), sample(set.Names()))
	}
	return a
}

// sample is the first few names, for a message.
func sample(names []string) string {
	const n = 4
	if len(names) <= n {
		return strings.Join(names, ", ")
	}
	return strings.Join(names[:n], ", ") + fmt.Sprintf(" (and %d more)", len(names)-n)
}

// readImet reads the model tensors of an imet checkpoint, or of the best
// (else the latest) checkpoint of a run directory: the moving average of
// the weights when the run kept one, as the run itself predicts with.
func readImet(path string) (weights.Set, string, error) {
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		d := checkpoint.Dir{Path: filepath.Join(path, "checkpoints")}
		ix, err := d.ReadIndex()
		if err != nil {
			return nil, "", err
		}
		name := ix.Best
		if name == "" {
			name = ix.Latest
		}
		if name == "" {
			return nil, "", fmt.Errorf("%s: the run has no checkpoint yet", path)
		}
		path = filepath.Join(d.Path, name)
	}
	c, err := checkpoint.Read(path)
	if err != nil {
		return nil, "", err
	}
	prefix := "model/"
	for k := range c.Tensors {
		if strings.HasPrefix(k, "ema/") {
			prefix = "ema/"
			break
		}
	}
	set := weights.Set{}
	for k, t := range c.Tensors {
		name, ok := strings.CutPrefix(k, prefix)
		if !ok {
			continue
		}
		v, err := floats(t)
		if err != nil {
			return nil, "", fmt.Errorf("%s: tensor %s: %w", path, k, err)
		}
		set[name] = &weights.Tensor{Shape: t.Shape, DType: weights.Float32, Data: v}
	}
	if len(set) == 0 {
		return nil, "", fmt.Errorf("%s: no model tensors in the checkpoint", path)
	}
	return set, path, nil
}

// floats widens a checkpoint tensor to float32: weights are float32,
// BatchNorm's counters int64.
func floats(t checkpoint.Tensor) ([]float32, error) {
	switch t.DType {
	case "float32":
		return t.Floats32()
	case "int64":
		if len(t.Data)%8 != 0 {
			return nil, fmt.Errorf("int64 data of %d bytes", len(t.Data))
		}
		v := make([]float32, len(t.Data)/8)
		for i := range v {
			v[i] = float32(int64(binary.LittleEndian.Uint64(t.Data[8*i:])))
		}
		return v, nil
	case "float64":
		v := make([]float32, len(t.Data)/8)
		for i := range v {
			v[i] = float32(math.Float64frombits(binary.LittleEndian.Uint64(t.Data[8*i:])))
		}
		return v, nil
	}
	return nil, fmt.Errorf("dtype %s is not a weight", t.DType)
}
