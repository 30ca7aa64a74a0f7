package dataset

import (
	"path/filepath"

	"imet/internal/vision/imageio"
)

// decodeImages decodes every train and test image that exists (missing
// ones are reported apart) with imageio.VerifyAll and reports each broken
// one at the CSV line naming it, with why: truncated, zero bytes, not an
// image, corrupt.
func decodeImages(c *collector, d *Dataset, trainLines, testLines []int, opt Options) {
	type at struct {
		file string
		line int
		rel  string
	}
	var paths []string
	where := map[string]at{}
	add := func(sub, file string, ids []string, lines []int) {
		for i, id := range ids {
			rel := sub + "/" + id + d.Ext
			p := filepath.Join(d.Dir, sub, id+d.Ext)
			if _, seen := where[p]; seen {
				continue
			}
			where[p] = at{file, lines[i], rel}
			paths = append(paths, p)
		}
	}
	trainIDs := make([]string, len(d.Train))
	for i, r := range d.Train {
		trainIDs[i] = r.ID
	}
	add(TrainDir, TrainFile, trainIDs, trainLines)
	add(TestDir, SampleFile, d.TestIDs, testLines)
	for _, b := range imageio.VerifyAll(paths, opt.DecodeWorkers, opt.DecodeProgress) {
		if b.Reason == imageio.ReasonUnreadable {
			continue // missing: already reported as such
		}
		w := where[b.Path]
		msg := "broken image, " + b.Reason
		if b.Err != nil && b.Reason != imageio.ReasonNotImage {
			msg += " (" + b.Err.Error() + ")"
		}
		if c.errorf(w.file, w.line, w.rel, "%s:", msg) {
			return
		}
	}
}
