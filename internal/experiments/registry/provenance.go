package registry

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"sync"

	"imet/internal/base/buildinfo"
	"imet/internal/data/dataset"
)

// Code identifies the code a run was made with.
type Code struct {
	Revision string // commit or git describe output of the binary; "unknown" when it carries none
	Dirty    bool
}

var (
	codeOnce sync.Once
	code     Code
)

// CodeVersion returns the revision of the running binary (buildinfo.Read:
// stamped by the Makefile, else embedded by the Go toolchain), or
// "unknown". It deliberately never runs git in the working directory:
// that is the user's project, whose HEAD says nothing about the code
// that runs.
func CodeVersion() Code {
	codeOnce.Do(func() {
		bi := buildinfo.Read()
		code = Code{Revision: bi.Revision, Dirty: bi.Dirty}
		if code.Revision == "" {
			code.Revision = "unknown"
		}
	})
	return code
}

// DataSetFingerprint is Fingerprint of the iMet-layout data set under
// root (package dataset): labels.csv, train.csv, sample_submission.csv and
// the folds file (a relative path is under root; "" for none) with the
// train/ and test/ images. The test images count because the submission
// is made from them. Files of the layout that are absent are left out.
func DataSetFingerprint(root, folds string) (string, error) {
	var csvs []string
	for _, n := range []string{dataset.TrainFile, dataset.LabelsFile, dataset.SampleFile, folds} {
		if n == "" {
			continue
		}
		if !filepath.IsAbs(n) {
			n = filepath.Join(root, n)
		}
		if _, err := os.Stat(n); err == nil {
			csvs = append(csvs, n)
		}
	}
	return Fingerprint(csvs, filepath.Join(root, dataset.TrainDir), filepath.Join(root, dataset.TestDir))
}

// Fingerprint identifies a data set: the contents of its CSV files plus the
// list of image files (relative name and size) under each of imageDirs, so
// that a changed label, an added fold file, a missing or a re-encoded
// image all change it, while the images' pixels are not re-read on every
// run (an edit that keeps a file's size is not seen). An image directory
// that does not exist counts as empty.
func Fingerprint(csvPaths []string, imageDirs ...string) (string, error) {
	h := sha256.New()
	paths := append([]string(nil), csvPaths...)
	sort.Strings(paths)
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			return "", fmt.Errorf("fingerprint: %w", err)
		}
		fmt.Fprintf(h, "csv %s\n", filepath.Base(p))
		_, err = io.Copy(h, f)
		f.Close()
		if err != nil {
			return "", fmt.Errorf("fingerprint: %s: %w", p, err)
		}
		h.Write([]byte{0})
	}
	for _, dir := range imageDirs {
		if dir == "" {
			continue
		}
		// Directories are told apart by name, so that an image moved from
		// train/ to test/ changes the fingerprint.
		fmt.Fprintf(h, "dir %s\n", filepath.Base(dir))
		var names []string
		sizes := map[string]int64{}
		err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				if p == dir && errors.Is(err, fs.ErrNotExist) {
					return fs.SkipAll
				}
				return err
			}
			if d.IsDir() {
				return nil
			}
			info, err := d.Info()
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(dir, p)
			rel = filepath.ToSlash(rel)
			names = append(names, rel)
			sizes[rel] = info.Size()
			return nil
		})
		if err != nil {
			return "", fmt.Errorf("fingerprint: %w", err)
		}
		sort.Strings(names)
		for _, n := range names {
			fmt.Fprintf(h, "img %s %d\n", n, sizes[n])
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
