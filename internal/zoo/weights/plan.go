package weights

import (
	"fmt"
	"sort"
	"strings"
)

// LoadOptions say how strictly a Set must fit a model.
type LoadOptions struct {
	// HeadPrefixes name the classifier's parameters (e.g. "fc.",
	// "classifier.", "last_linear."). A head tensor whose shape differs from
	// the model's (another class count) is skipped and the model keeps its
	// fresh initialisation; the report notes it instead of failing.
	HeadPrefixes []string
	// AllowMissing accepts model tensors the file lacks (they keep their
	// initialisation), e.g. when loading a backbone-only file.
	AllowMissing bool
	// AllowUnexpected accepts file tensors the model has no place for.
	AllowUnexpected bool
}

// Mismatch is one tensor present on both sides with different shapes.
type Mismatch struct {
	Name        string
	Model, File []int64
}

// Report says what loading a Set into a model did and did not do.
type Report struct {
	// Loaded lists the names copied into the model.
	Loaded []string
	// Missing are model tensors the file does not have.
	Missing []string
	// Unexpected are file tensors the model does not have.
	Unexpected []string
	// Mismatched are tensors whose shapes differ (outside the head).
	Mismatched []Mismatch
	// Reinitialised are head tensors whose shapes differ; the model keeps
	// its own initialisation for them.
	Reinitialised []Mismatch
	// Counters are BatchNorm num_batches_tracked buffers the file lacks
	// (files saved before PyTorch 0.4.1, such as torchvision's DenseNets,
	// and non-PyTorch files). They stay 0, as PyTorch itself does; they
	// only matter for BatchNorm with momentum=None.
	Counters []string
	opts     LoadOptions
}

// Err is nil when the load is acceptable under the options it was planned
// with, and otherwise an error carrying the whole report.
func (r *Report) Err() error {
	if len(r.Mismatched) > 0 || (!r.opts.AllowMissing && len(r.Missing) > 0) ||
		(!r.opts.AllowUnexpected && len(r.Unexpected) > 0) {
		return fmt.Errorf("weights do not fit the model:\n%s", r)
	}
	return nil
}

// String formats the report: one line of counts, then every missing,
// unexpected, mis-shaped and re-initialised tensor by name.
func (r *Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "loaded %d tensors; %d missing, %d unexpected, %d mis-shaped, %d head tensors re-initialised",
		len(r.Loaded), len(r.Missing), len(r.Unexpected), len(r.Mismatched), len(r.Reinitialised))
	if len(r.Counters) > 0 {
		fmt.Fprintf(&b, " (%d num_batches_tracked counters absent from the file, left at 0)", len(r.Counters))
	}
	list := func(title string, names []string) {
		if len(names) == 0 {
			return
		}
		fmt.Fprintf(&b, "\n%s:", title)
		for _, n := range names {
			fmt.Fprintf(&b, "\n  %s", n)
		}
	}
	shapes := func(title string, ms []Mismatch) {
		if len(ms) == 0 {
			return
		}
		fmt.Fprintf(&b, "\n%s:", title)
		for _, m := range ms {
			fmt.Fprintf(&b, "\n  %s: model %s, file %s", m.Name, ShapeString(m.Model), ShapeString(m.File))
		}
	}
	list("missing from the file (model keeps its initialisation)", r.Missing)
	list("in the file but not in the model", r.Unexpected)
	shapes("shape differs", r.Mismatched)
	shapes("head re-initialised (class count differs)", r.Reinitialised)
	if len(r.Unexpected) > 0 && len(r.Missing) > 0 && hasPrefix(r.Unexpected, "module.") {
		b.WriteString("\nhint: the file's keys start with \"module.\" (saved from DataParallel); strip it with StripPrefix")
	}
	return b.String()
}

func hasPrefix(names []string, p string) bool {
	for _, n := range names {
		if strings.HasPrefix(n, p) {
			return true
		}
	}
	return false
}

// Plan matches a model's tensors (name to shape) against a Set. It copies
// nothing: the engine-side loader copies the Loaded names afterwards, so
// that a bad file is reported in full before any model tensor changes.
func Plan(model map[string][]int64, file Set, opts LoadOptions) *Report {
	r := &Report{opts: opts}
	isHead := func(n string) bool {
		for _, p := range opts.HeadPrefixes {
			if strings.HasPrefix(n, p) {
				return true
			}
		}
		return false
	}
	for name, shape := range model {
		t, ok := file[name]
		switch {
		case !ok && strings.HasSuffix(name, ".num_batches_tracked"):
			r.Counters = append(r.Counters, name)
		case !ok:
			r.Missing = append(r.Missing, name)
		case ShapeString(t.Shape) != ShapeString(shape):
			m := Mismatch{Name: name, Model: shape, File: t.Shape}
			if isHead(name) {
				r.Reinitialised = append(r.Reinitialised, m)
			} else {
				r.Mismatched = append(r.Mismatched, m)
			}
		default:
			r.Loaded = append(r.Loaded, name)
		}
	}
	for name := range file {
		if _, ok := model[name]; !ok {
			r.Unexpected = append(r.Unexpected, name)
		}
	}
	// A head only partly re-initialised (weight re-initialised, bias kept)
	// would be nonsense: re-initialise every head tensor of a layer whose
	// weight was.
	if len(r.Reinitialised) > 0 {
		layers := map[string]bool{}
		for _, m := range r.Reinitialised {
			layers[layerOf(m.Name)] = true
		}
		kept := r.Loaded[:0]
		for _, n := range r.Loaded {
			if isHead(n) && layers[layerOf(n)] {
				r.Reinitialised = append(r.Reinitialised, Mismatch{Name: n, Model: model[n], File: file[n].Shape})
				continue
			}
			kept = append(kept, n)
		}
		r.Loaded = kept
	}
	sort.Strings(r.Loaded)
	sort.Strings(r.Missing)
	sort.Strings(r.Unexpected)
	sort.Strings(r.Counters)
	sort.Slice(r.Mismatched, func(i, j int) bool { return r.Mismatched[i].Name < r.Mismatched[j].Name })
	sort.Slice(r.Reinitialised, func(i, j int) bool { return r.Reinitialised[i].Name < r.Reinitialised[j].Name })
	return r
}

// layerOf strips the last dotted component: "fc.weight" -> "fc".
func layerOf(name string) string {
	if i := strings.LastIndexByte(name, '.'); i >= 0 {
		return name[:i]
	}
	return name
}
