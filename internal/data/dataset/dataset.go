// Package dataset reads and validates data sets in the iMet Collection
// layout:
//
//	DIR/labels.csv             attribute_id,attribute_name  (names "group::value")
//	DIR/train.csv              id,attribute_ids             (ids space-separated)
//	DIR/sample_submission.csv  id,attribute_ids             (test ids; labels a placeholder)
//	DIR/train/ID.png|jpg       training images
//	DIR/test/ID.png|jpg        test images
//
// Label groups come from the name prefix, so the 2019 set (culture, tag)
// and the 2020 set (country, culture, dimension, medium, tags) both work
// without configuration. Every defect is reported with the file, line and
// value at fault; Validate collects many at once instead of stopping at the
// first.
package dataset

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
)

// File names of the layout.
const (
	LabelsFile = "labels.csv"
	TrainFile  = "train.csv"
	SampleFile = "sample_submission.csv"
	TrainDir   = "train"
	TestDir    = "test"
)

// ImageExts are the image file extensions recognised, in the order tried.
var ImageExts = []string{".png", ".jpg", ".jpeg"}

// Dataset is an opened data set.
type Dataset struct {
	Dir     string
	Labels  *Labels
	Train   []Row
	TestIDs []string // from sample_submission.csv, in file order
	// Ext is the image file extension (".png" or ".jpg"), found from the
	// first training image present.
	Ext string
}

// TrainImage is the path of a training image.
func (d *Dataset) TrainImage(id string) string {
	return filepath.Join(d.Dir, TrainDir, id+d.Ext)
}

// TestImage is the path of a test image.
func (d *Dataset) TestImage(id string) string {
	return filepath.Join(d.Dir, TestDir, id+d.Ext)
}

// Options tune Open and Validate.
type Options struct {
	ReadOptions
	// SkipImages skips the check that every image file exists (it costs
	// one stat per image, done in parallel).
	SkipImages bool
	// Decode decodes every image (in parallel, DecodeWorkers goroutines, 0
	// for one per core) and reports each broken one: truncated, zero
	// bytes, not an image, corrupt. DecodeProgress, when set, is called
	// after each image.
	Decode         bool
	DecodeWorkers  int
	DecodeProgress func(done, total int)
}

// Open reads and checks a data set directory, failing on the first error.
func Open(dir string, opt Options) (*Dataset, error) {
	opt.MaxProblems = 1
	d, probs := validate(dir, opt, false)
	if len(probs) > 0 {
		return nil, probs[0]
	}
	return d, nil
}

// Validate checks a data set directory and returns every problem found,
// errors and warnings, up to opt.MaxProblems errors (100 when 0). The data
// set returned holds what could be read even when problems were found; it is
// nil only when labels.csv is unusable.
func Validate(dir string, opt Options) (*Dataset, Problems) {
	if opt.MaxProblems <= 0 {
		opt.MaxProblems = 100
	}
	return validate(dir, opt, true)
}

func validate(dir string, opt Options, warnings bool) (*Dataset, Problems) {
	c := newCollector(opt.MaxProblems, warnings)
	d := &Dataset{Dir: dir}
	missing := func(name string, err error) {
		if errors.Is(err, fs.ErrNotExist) {
			c.errorf(name, 0, "", "missing from %s", dir)
		} else {
			c.errorf(name, 0, "", "%v", err)
		}
	}
	labels, err := readLabels(c, filepath.Join(dir, LabelsFile))
	if err != nil {
		missing(LabelsFile, err)
	}
	if c.full() || labels == nil || labels.Len() == 0 {
		return nil, c.problems()
	}
	d.Labels = labels
	var trainLines, testLines []int
	d.Train, trainLines, err = readTrain(c, filepath.Join(dir, TrainFile), labels, opt.AllowEmpty)
	if err != nil {
		missing(TrainFile, err)
	}
	if c.full() {
		return d, c.problems()
	}
	d.TestIDs, testLines, err = readSample(c, filepath.Join(dir, SampleFile))
	if err != nil {
		missing(SampleFile, err)
	}
	if c.full() {
		return d, c.problems()
	}
	trainIDs := make([]string, len(d.Train))
	inTrain := make(map[string]bool, len(d.Train))
	for i, r := range d.Train {
		trainIDs[i] = r.ID
		inTrain[r.ID] = true
	}
	// The same id in train and test is legal in the layout but almost
	// always a leak (a test image scored against its own training label).
	for i, id := range d.TestIDs {
		if inTrain[id] {
			c.add(Problem{Severity: Warning, File: SampleFile, Line: testLines[i], Value: id, Msg: "id is also in train.csv:"})
		}
	}
	d.Ext = detectExt(dir, trainIDs, d.TestIDs)
	if opt.SkipImages {
		return d, c.problems()
	}
	for _, part := range []struct {
		sub, file string
		ids       []string
		lines     []int
	}{{TrainDir, TrainFile, trainIDs, trainLines}, {TestDir, SampleFile, d.TestIDs, testLines}} {
		if st, err := os.Stat(filepath.Join(dir, part.sub)); err != nil || !st.IsDir() {
			if len(part.ids) > 0 {
				c.errorf(part.sub+"/", 0, "", "image folder missing from %s", dir)
			}
			continue
		}
		for _, i := range missingImages(filepath.Join(dir, part.sub), part.ids, d.Ext) {
			if c.errorf(part.file, part.lines[i], part.sub+"/"+part.ids[i]+d.Ext, "image file missing:") {
				return d, c.problems()
			}
		}
	}
	if opt.Decode {
		decodeImages(c, d, trainLines, testLines, opt)
	}
	return d, c.problems()
}

func (c *collector) problems() Problems {
	if len(c.list) == 0 {
		return nil
	}
	return c.list
}

// detectExt finds the image extension from the first id whose image exists
// under train/ (or test/); ".png" when none does, so that the missing-image
// errors name the layout's default.
func detectExt(dir string, trainIDs, testIDs []string) string {
	try := func(sub string, ids []string) string {
		for i, id := range ids {
			if i >= 16 {
				break
			}
			for _, ext := range ImageExts {
				if _, err := os.Stat(filepath.Join(dir, sub, id+ext)); err == nil {
					return ext
				}
			}
		}
		return ""
	}
	if e := try(TrainDir, trainIDs); e != "" {
		return e
	}
	if e := try(TestDir, testIDs); e != "" {
		return e
	}
	return ".png"
}

// missingImages returns, ascending, the indices of ids whose image file is
// not a regular file in dir. The stats run in parallel: on network and
// overlay file systems each one is a round trip, and 109k of them in
// sequence take minutes.
func missingImages(dir string, ids []string, ext string) []int {
	workers := 4 * runtime.GOMAXPROCS(0)
	if workers > 64 {
		workers = 64
	}
	var (
		mu   sync.Mutex
		miss []int
		wg   sync.WaitGroup
	)
	chunk := (len(ids) + workers - 1) / workers
	for start := 0; start < len(ids); start += chunk {
		end := min(start+chunk, len(ids))
		wg.Add(1)
		go func(start, end int) {
			defer wg.Done()
			var local []int
			for i := start; i < end; i++ {
				st, err := os.Stat(filepath.Join(dir, ids[i]+ext))
				if err != nil || !st.Mode().IsRegular() {
					local = append(local, i)
				}
			}
			mu.Lock()
			miss = append(miss, local...)
			mu.Unlock()
		}(start, end)
	}
	wg.Wait()
	sort.Ints(miss)
	return miss
}

// Summary is a one-paragraph description of a data set for command output.
func (d *Dataset) Summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %d train images, %d test images, %d labels in %d groups (", d.Dir, len(d.Train), len(d.TestIDs), d.Labels.Len(), len(d.Labels.Groups))
	counts := make([]int, len(d.Labels.Groups))
	for _, g := range d.Labels.GroupOf {
		counts[g]++
	}
	for i, g := range d.Labels.Groups {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s %d", g, counts[i])
	}
	b.WriteString("), images *" + d.Ext)
	if len(d.Train) > 0 {
		n := 0
		for _, r := range d.Train {
			n += len(r.Labels)
		}
		fmt.Fprintf(&b, ", %.2f labels per train image", float64(n)/float64(len(d.Train)))
	}
	return b.String()
}
