package train

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"imet/internal/data/dataset"
	"imet/internal/data/folds"
	"imet/internal/engine/torch"
	"imet/internal/postprocess/probs"
	"imet/internal/training/targets"
	"imet/internal/training/trainconfig"
	"imet/internal/vision/imageio"
	"imet/internal/vision/loader"
	"imet/internal/vision/mixup"
	"imet/internal/vision/packed"
	"imet/internal/vision/pipeline"
	"imet/internal/zoo/models"
	"imet/internal/zoo/pretrained"
)

// FoldData is one fold of an iMet-layout data set, ready for Run: the
// training rows of the other folds, this fold's validation rows and the
// test images, each behind a Source over the image loader.
type FoldData struct {
	Dataset    *dataset.Dataset
	Train, Val *ImageSource
	Test       *ImageSource // nil when the data set lists no test images
	ValIDs     []string
	TestIDs    []string
	ValTruth   [][]int
	// LabelIDs are the attribute ids of the columns, as strings.
	LabelIDs []string
	// Broken collects the images left out as broken (data.skip_broken).
	Broken *BrokenImages
	// Dropped counts training rows left out because targets.train_csv
	// lacks them; Softened the training rows whose targets the teacher
	// (targets.soft) changed.
	Dropped, Softened int
	// Pseudo are the test images that joined training (targets.pseudo),
	// the most confident first; PseudoSkipped counts the rows of the
	// pseudo-label file left out because they are training images, those
	// of this fold's validation among them.
	Pseudo        []targets.Pseudo
	PseudoSkipped int
}

// Summary says in one line how the targets differ from train.csv's hard
// labels, or "" when they do not.
func (fd *FoldData) Summary() string {
	var parts []string
	if fd.Dropped > 0 {
		parts = append(parts, fmt.Sprintf("%d training rows left out (not in targets.train_csv)", fd.Dropped))
	}
	if fd.Softened > 0 {
		parts = append(parts, fmt.Sprintf("%d training rows with soft targets (targets.soft)", fd.Softened))
	}
	if len(fd.Pseudo) > 0 || fd.PseudoSkipped > 0 {
		s := fmt.Sprintf("%d pseudo-labelled test images joined training", len(fd.Pseudo))
		if len(fd.Pseudo) > 0 {
			s += fmt.Sprintf(" (confidence %.3f to %.3f)", fd.Pseudo[len(fd.Pseudo)-1].Confidence, fd.Pseudo[0].Confidence)
		}
		if fd.PseudoSkipped > 0 {
			s += fmt.Sprintf(", %d rows of training images left out", fd.PseudoSkipped)
		}
		parts = append(parts, s)
	}
	if len(parts) == 0 {
		return ""
	}
	return "targets: " + strings.Join(parts, "; ")
}

// OpenDataset opens the configured data set with the label space the run
// trains on: every label, or the subset data.labels names.
func OpenDataset(cfg *trainconfig.Run) (*dataset.Dataset, error) {
	ds, err := dataset.Open(cfg.Data.Root, dataset.Options{SkipImages: true})
	if err != nil {
		return nil, err
	}
	return restrict(ds, cfg.Data.Labels)
}

func restrict(ds *dataset.Dataset, specs []string) (*dataset.Dataset, error) {
	if len(specs) == 0 {
		return ds, nil
	}
	cols, err := ds.Labels.Select(specs)
	if err != nil {
		return nil, fmt.Errorf("data.labels: %w", err)
	}
	return ds.Restrict(cols)
}

// pseudoItems reads the pseudo-label file and returns the test images the
// selection keeps. Rows of training images are never candidates: those of
// the validation fold would leak it into its own training, the others are
// trained on with their labels already.
func pseudoItems(cfg *trainconfig.Run, ds *dataset.Dataset, path string, isVal map[string]bool, fd *FoldData) ([]loader.Item, error) {
	t, err := targets.Load(path, ds.Labels)
	if err != nil {
		return nil, err
	}
	isTest := make(map[string]bool, len(ds.TestIDs))
	for _, id := range ds.TestIDs {
		isTest[id] = true
	}
	isTrain := make(map[string]bool, len(ds.Train))
	for _, r := range ds.Train {
		isTrain[r.ID] = true
	}
	var cand []string
	for i, id := range t.IDs() {
		switch {
		case isTest[id]:
			cand = append(cand, id)
		case isTrain[id] || isVal[id]:
			fd.PseudoSkipped++
		default:
			return nil, fmt.Errorf("%s:%d: image %s is neither a test image (sample_submission.csv) nor a training image", probs.IDsPath(path), i+2, id)
		}
	}
	sel, err := t.Select(cand, targets.Selection{Share: cfg.Targets.Pseudo.Share, MinConfidence: cfg.Targets.Pseudo.MinConfidence, Threshold: cfg.Targets.Pseudo.Threshold})
	if err != nil {
		return nil, err
	}
	fd.Pseudo = sel
	items := make([]loader.Item, len(sel))
	for i, p := range sel {
		items[i] = loader.Item{Path: ds.TestImage(p.ID), Target: p.Target}
	}
	return items, nil
}

// OpenFold reads the data set and folds.csv named by cfg and splits off
// fold k.
func OpenFold(cfg *trainconfig.Run, k int) (*FoldData, error) {
	full, err := dataset.Open(cfg.Data.Root, dataset.Options{SkipImages: true})
	if err != nil {
		return nil, err
	}
	ds, err := restrict(full, cfg.Data.Labels)
	if err != nil {
		return nil, err
	}
	// Relabelled training rows (targets.train_csv), read against the full
	// label set, then put into the run's label space as root's rows are.
	var relabel map[string][]int
	if p := cfg.Targets.TrainCSV; p != "" {
		rows, err := dataset.ReadTrain(p, full.Labels, dataset.ReadOptions{AllowEmpty: true})
		if err != nil {
			return nil, fmt.Errorf("targets.train_csv: %w", err)
		}
		known := make(map[string]bool, len(full.Train))
		for _, r := range full.Train {
			known[r.ID] = true
		}
		for i, r := range rows {
			if !known[r.ID] {
				return nil, fmt.Errorf("targets.train_csv: %s:%d: image %s is not in %s", p, i+2, r.ID, filepath.Join(full.Dir, dataset.TrainFile))
			}
		}
		sub, err := restrict(&dataset.Dataset{Labels: full.Labels, Train: rows}, cfg.Data.Labels)
		if err != nil {
			return nil, err
		}
		relabel = make(map[string][]int, len(rows))
		for _, r := range sub.Train {
			relabel[r.ID] = r.Labels
		}
	}
	rows := ds.Train
	if cfg.Data.Limit > 0 && cfg.Data.Limit < len(rows) {
		rows = rows[:cfg.Data.Limit]
	}
	fp := cfg.Data.FoldsPath()
	asg, err := folds.Read(fp)
	if err != nil {
		return nil, err
	}
	// A fold smaller than the smallest batch is a stray fold number far
	// more often than a split anyone meant.
	minBatch := cfg.Stages[0].BatchSize
	for _, s := range cfg.Stages {
		minBatch = min(minBatch, s.BatchSize)
	}
	if err := asg.CheckSizes(minBatch); err != nil {
		return nil, fmt.Errorf("%w; %s", err, "fix folds.csv, or lower the stages' batch_size")
	}
	ids := make([]string, len(ds.Train))
	for i, r := range ds.Train {
		ids[i] = r.ID
	}
	fold, err := asg.For(ids)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", fp, err)
	}
	if k < 0 || k >= asg.K {
		return nil, fmt.Errorf("fold %d: %s has folds 0..%d", k, fp, asg.K-1)
	}
	var pcfg *pipeline.Config
	if cfg.Data.PipelinesFile != "" {
		if pcfg, err = pipeline.LoadConfig(cfg.Data.PipelinesFile); err != nil {
			return nil, err
		}
	}
	p, err := pipeline.Get(cfg.Data.Pipeline, pcfg)
	if err != nil {
		return nil, err
	}
	if cfg.Data.TTA == "none" {
		p.TTA = p.TTA[:1]
	}
	var teacher *targets.Teacher
	if f := cfg.Targets.Soft.File; f != "" {
		if teacher, err = targets.Load(f, ds.Labels); err != nil {
			return nil, fmt.Errorf("targets.soft.file: %w", err)
		}
	}
	L := ds.Labels.Len()
	fd := &FoldData{Dataset: ds}
	for _, id := range ds.Labels.IDs {
		fd.LabelIDs = append(fd.LabelIDs, strconv.Itoa(id))
	}
	var trainItems, valItems, testItems []loader.Item
	isVal := map[string]bool{}
	for i, r := range rows {
		hot := func(cols []int) []float32 {
			t := make([]float32, L)
			for _, c := range cols {
				t[c] = 1
			}
			return t
		}
		if fold[i] == k {
			// Validation keeps root's labels and hard targets: a round's
			// score compares with the one before.
			valItems = append(valItems, loader.Item{Path: ds.TrainImage(r.ID), Target: hot(r.Labels)})
			fd.ValIDs = append(fd.ValIDs, r.ID)
			fd.ValTruth = append(fd.ValTruth, r.Labels)
			isVal[r.ID] = true
			continue
		}
		labels := r.Labels
		if relabel != nil {
			l, ok := relabel[r.ID]
			if !ok {
				fd.Dropped++
				continue
			}
			labels = l
		}
		t := hot(labels)
		if teacher != nil {
			pr, ok := teacher.Row(r.ID)
			if !ok {
				return nil, fmt.Errorf("targets.soft.file: %s has no row for training image %s (it must cover every training row: an ensemble's oof.npy does)", teacher.Path, r.ID)
			}
			targets.Soften(cfg.Targets.Soft.Rule, cfg.Targets.Soft.Alpha, t, pr)
			fd.Softened++
		}
		trainItems = append(trainItems, loader.Item{Path: ds.TrainImage(r.ID), Target: t})
	}
	if len(valItems) == 0 || len(trainItems) == 0 {
		return nil, fmt.Errorf("fold %d leaves %d training and %d validation rows", k, len(trainItems), len(valItems))
	}
	if f := cfg.Targets.Pseudo.File; f != "" {
		pl, err := pseudoItems(cfg, ds, f, isVal, fd)
		if err != nil {
			return nil, fmt.Errorf("targets.pseudo.file: %w", err)
		}
		trainItems = append(trainItems, pl...)
	}
	for _, id := range ds.TestIDs {
		testItems = append(testItems, loader.Item{Path: ds.TestImage(id), Target: make([]float32, L)})
	}
	fd.TestIDs = ds.TestIDs
	opt := loader.Options{Workers: cfg.Data.Workers, Seed: uint64(cfg.Seed), CacheBytes: int64(cfg.Data.CacheMB) << 20,
		SkipBroken: cfg.Data.SkipBroken}
	if pp := cfg.Data.PackedPath(); pp != "" {
		r, err := packed.Shared(pp, ds.Dir)
		if err != nil {
			return nil, fmt.Errorf("data.packed: %w", err)
		}
		if !holdsAny(r, trainItems) {
			return nil, fmt.Errorf("data.packed: %s holds none of the %d training images under %s: was it packed from another data set? (imet datasets pack %s)", pp, len(trainItems), ds.Dir, ds.Dir)
		}
		opt.Packed = r
	}
	fd.Broken = &BrokenImages{}
	if cfg.Data.SkipBroken {
		opt.OnSkip = fd.Broken.report
	}
	const hint = "set data.skip_broken: true in the run configuration to leave broken images out (each is reported once), or list them all first with imet datasets validate --decode"
	fd.Train = &ImageSource{items: trainItems, pipe: p, opt: opt, classes: L, brokenHint: hint}
	fd.Val = &ImageSource{items: valItems, pipe: p, opt: opt, classes: L, brokenHint: hint}
	if len(testItems) > 0 {
		fd.Test = &ImageSource{items: testItems, pipe: p, opt: opt, classes: L, brokenHint: hint}
	}
	return fd, nil
}

// holdsAny reports whether the pack holds at least one of items: a pack
// made from another data set would otherwise be silently ignored.
func holdsAny(r *packed.Reader, items []loader.Item) bool {
	for _, it := range items {
		if _, ok := r.Lookup(it.Path); ok {
			return true
		}
	}
	return false
}

// BrokenImages collects the images that a fold's loaders left out as
// broken (loader.Options.SkipBroken), each once however many epochs and
// splits meet it.
type BrokenImages struct {
	mu   sync.Mutex
	seen map[string]bool
	list []string
	// OnReport, when set, is called once per broken image, from a loader
	// goroutine.
	OnReport func(path string, err error)
}

func (b *BrokenImages) report(path string, err error) {
	b.mu.Lock()
	if b.seen == nil {
		b.seen = map[string]bool{}
	}
	first := !b.seen[path]
	if first {
		b.seen[path] = true
		b.list = append(b.list, path)
	}
	on := b.OnReport
	b.mu.Unlock()
	if first && on != nil {
		on(path, err)
	}
}

// Report is the loader.Options.OnSkip of a source built outside OpenFold.
func (b *BrokenImages) Report(path string, err error) { b.report(path, err) }

// List returns the broken images found so far, in the order found.
func (b *BrokenImages) List() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.list...)
}

// ImageSource is a Source over image files through internal/vision/loader.
type ImageSource struct {
	items   []loader.Item
	pipe    *pipeline.Pipeline
	opt     loader.Options
	classes int
	tta     []*loader.Loader
	ttaBS   int
	// brokenHint is added to the error a broken image stops the loader
	// with (without SkipBroken): the option that skips them instead.
	brokenHint string
	// offset is the index of items[0] in the source this one is a shard
	// of, where its draws are keyed.
	offset int
	// shards are the parts handed out, kept so that their loaders (and
	// decoded-image caches) serve every validation of a run.
	shards map[[2]int]*ImageSource
}

// Shard implements Sharder: items lo..hi-1, augmented (stochastic TTA
// included) as in the whole source.
func (s *ImageSource) Shard(lo, hi int) Source {
	if sh, ok := s.shards[[2]int{lo, hi}]; ok {
		return sh
	}
	sh := &ImageSource{items: s.items[lo:hi], pipe: s.pipe, opt: s.opt, classes: s.classes, brokenHint: s.brokenHint, offset: s.offset + lo}
	if s.shards == nil {
		s.shards = map[[2]int]*ImageSource{}
	}
	s.shards[[2]int{lo, hi}] = sh
	return sh
}

// SetBrokenHint sets what the error of a broken image adds, naming the
// option that skips broken images instead of stopping.
func (s *ImageSource) SetBrokenHint(hint string) { s.brokenHint = hint }

// wrap adds the broken-image hint to a decode failure.
func (s *ImageSource) wrap(err error) error {
	var de *imageio.DecodeError
	if s.brokenHint != "" && !s.opt.SkipBroken && errors.As(err, &de) {
		return fmt.Errorf("%w\n  %s", err, s.brokenHint)
	}
	return err
}

// samples counts the samples of batch numbers [from, to) of n samples
// batchSize at a time.
func samples(from, to, batchSize, n int) int {
	return max(0, min(to*batchSize, n)-min(from*batchSize, n))
}

// Len implements Source.
func (s *ImageSource) Len() int { return len(s.items) }

// Classes implements Source.
func (s *ImageSource) Classes() int { return s.classes }

// Views implements Source: the pipeline's TTA variants.
func (s *ImageSource) Views() int { return len(s.pipe.TTA) }

// Train implements Source. The loader is built over the items in the
// epoch's order (shuffling off), with its seed derived from the epoch key,
// so augmentation draws depend only on (seed, epoch, position).
func (s *ImageSource) Train(ctx context.Context, key EpochKey, order []int, batchSize, start int, mix MixConfig) iter.Seq2[*Batch, error] {
	return func(yield func(*Batch, error) bool) {
		items := make([]loader.Item, len(order))
		for i, j := range order {
			items[i] = s.items[j]
		}
		o := s.opt
		o.BatchSize, o.Shuffle, o.DropLast = batchSize, false, true
		o.Seed = mixSeed(uint64(key.Seed), uint64(key.Global))
		o.KeyOffset, o.KeyStride = key.Offset, key.Stride
		o.CacheBytes = 0 // a new loader every epoch: a cache would never be reused
		switch {
		case mix.MixupAlpha > 0:
			o.Mix = mixup.Config{Mode: "mixup", Alpha: mix.MixupAlpha, P: mix.MixupProb}
		case mix.CutMixAlpha > 0:
			o.Mix = mixup.Config{Mode: "cutmix", Alpha: mix.CutMixAlpha, P: mix.CutMixProb}
		}
		l, err := loader.New(items, s.pipe.Train, o)
		if err != nil {
			yield(nil, err)
			return
		}
		next := start
		for b, err := range l.Epoch(ctx, 0, start) {
			if err != nil {
				yield(nil, s.wrap(err))
				return
			}
			idx := make([]int, len(b.Indices))
			for i, p := range b.Indices {
				idx[i] = order[p]
			}
			out := &Batch{Images: b.Images, N: b.N, C: b.C, H: b.H, W: b.W, Targets: b.Targets, L: b.L, Indices: idx, Release: b.Release,
				SkippedBatches: b.Number - next}
			next = b.Number + 1
			if !yield(out, nil) {
				return
			}
		}
	}
}

// Eval implements Source.
func (s *ImageSource) Eval(ctx context.Context, batchSize, variant int) iter.Seq2[*Batch, error] {
	return func(yield func(*Batch, error) bool) {
		if s.tta == nil || s.ttaBS != batchSize {
			o := s.opt
			o.BatchSize = batchSize
			o.KeyOffset = s.offset
			l, err := loader.NewTTA(s.items, s.pipe, o)
			if err != nil {
				yield(nil, err)
				return
			}
			s.tta, s.ttaBS = l, batchSize
		}
		n, next := len(s.items), 0
		for b, err := range s.tta[variant].Epoch(ctx, 0, 0) {
			if err != nil {
				yield(nil, s.wrap(err))
				return
			}
			out := &Batch{Images: b.Images, N: b.N, C: b.C, H: b.H, W: b.W, Targets: b.Targets, L: b.L, Indices: b.Indices, Release: b.Release,
				Dropped: samples(next, b.Number+1, batchSize, n) - b.N}
			next = b.Number + 1
			if !yield(out, nil) {
				return
			}
		}
		// Trailing batches whose every image was broken.
		if tail := samples(next, (n+batchSize-1)/batchSize, batchSize, n); tail > 0 {
			yield(&Batch{Dropped: tail}, nil)
		}
	}
}

// BuildModel creates the configured network for classes outputs, its
// initial weights drawn from the run's seed, and loads the pretrained
// weights file when one is named. The report says what was loaded (nil
// without a file).
func BuildModel(cfg *trainconfig.Run, classes int) (Model, string, error) {
	torch.ManualSeed(uint64(cfg.Seed))
	opts := cfg.Model.Options(classes)
	m, err := models.New(cfg.Model.Arch, opts)
	if err != nil {
		return nil, "", err
	}
	if cfg.Model.Pretrained == "" {
		return m, "", nil
	}
	r, err := pretrained.Load(m, cfg.Model.Arch, opts, pretrained.Source{Path: cfg.Model.Pretrained, From: cfg.Model.From})
	if err != nil {
		return nil, "", err
	}
	return m, r.String(), nil
}
