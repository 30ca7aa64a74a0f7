package packed

import (
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"sync"

	"imet/internal/base/atomicfile"
	"imet/internal/vision/augment"
	"imet/internal/vision/imageio"
)

// Options configure Build.
type Options struct {
	// MaxSide caps the longest side of stored images (0: full size, which
	// makes batches bit-identical to decoding). Choose it at or above what
	// the pipeline's first resize needs: an image stored smaller is
	// upscaled by the pipeline, which costs detail.
	MaxSide int
	// Workers decode in parallel (0: one per core).
	Workers int
	// Progress, when set, is called after each image is written, from the
	// writing goroutine.
	Progress func(done, total int)
}

// Stats summarise a Build.
type Stats struct {
	Images, Capped int
	Bytes          int64 // size of the pack file
	SourceBytes    int64 // total size of the image files read
}

// Build decodes the images at keys (paths relative to root, with forward
// or native slashes) and writes them as a pack at out. Each is decoded at
// full size with EXIF orientation applied, exactly as the loader decodes
// it, then shrunk when MaxSide caps it. A file that does not decode stops
// the build with an error naming it; out is written atomically, so a
// failed build leaves any previous pack in place.
func Build(out, root string, keys []string, opt Options) (Stats, error) {
	workers := opt.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	type result struct {
		img        *imageio.Image
		ow, oh     int
		srcBytes   int64
		err        error
		done       chan struct{}
		key, fpath string
	}
	var st Stats
	err := atomicfile.Write(out, 0o644, func(w io.Writer) error {
		pw, err := NewWriter(w, opt.MaxSide)
		if err != nil {
			return err
		}
		// Decoding runs ahead of the writer by a bounded window, in order:
		// the file lists images as keys gives them.
		window := make(chan *result, 4*workers)
		jobs := make(chan *result)
		var wg sync.WaitGroup
		for range workers {
			wg.Go(func() {
				for r := range jobs {
					r.img, r.ow, r.oh, r.srcBytes, r.err = load(r.fpath, opt.MaxSide)
					close(r.done)
				}
			})
		}
		stop := make(chan struct{})
		defer func() {
			close(stop)
			wg.Wait()
		}()
		go func() {
			defer close(jobs)
			defer close(window)
			for _, k := range keys {
				r := &result{key: filepath.ToSlash(k), fpath: filepath.Join(root, filepath.FromSlash(k)), done: make(chan struct{})}
				select {
				case window <- r:
				case <-stop:
					return
				}
				select {
				case jobs <- r:
				case <-stop:
					return
				}
			}
		}()
		for r := range window {
			<-r.done
			if r.err != nil {
				return r.err
			}
			if err := pw.Add(r.key, r.img, r.ow, r.oh); err != nil {
				return err
			}
			st.Images++
			st.SourceBytes += r.srcBytes
			if r.img.W != r.ow || r.img.H != r.oh {
				st.Capped++
			}
			if opt.Progress != nil {
				opt.Progress(st.Images, len(keys))
			}
		}
		if err := pw.Close(); err != nil {
			return err
		}
		st.Bytes = pw.n
		return nil
	})
	return st, err
}

// load decodes one file at full size and caps it.
func load(path string, maxSide int) (img *imageio.Image, ow, oh int, size int64, err error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, 0, 0, 0, err
	}
	img, err = imageio.DecodeBytes(path, data, imageio.Hint{})
	if err != nil {
		return nil, 0, 0, 0, err
	}
	ow, oh = img.W, img.H
	if maxSide > 0 && max(ow, oh) > maxSide {
		img, err = Shrink(img, maxSide)
		if err != nil {
			return nil, 0, 0, 0, fmt.Errorf("%s: %w", path, err)
		}
	}
	return img, ow, oh, int64(len(data)), nil
}

// Shrink scales img, keeping its aspect ratio, so that its longest side is
// maxSide, with the pipeline's own resampling (augment.LongestMaxSize),
// rounded to 8 bits.
func Shrink(img *imageio.Image, maxSide int) (*imageio.Image, error) {
	c, err := augment.NewChain(&augment.LongestMaxSize{SizeLimit: augment.SizeLimit{MaxSize: maxSide, P: 1}})
	if err != nil {
		return nil, err
	}
	buf, w, h, err := c.Apply(img, rand.New(rand.NewPCG(0, 0)), nil)
	if err != nil {
		return nil, err
	}
	out := imageio.New(w, h)
	n := w * h
	for i := range n {
		for ch := range 3 {
			out.Pix[3*i+ch] = uint8(max(0, min(255, buf[ch*n+i]+0.5)))
		}
	}
	return out, nil
}
