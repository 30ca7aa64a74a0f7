package probs

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"imet/internal/base/atomicfile"
	"imet/internal/base/snippet"
)

// File is a probability matrix with the identity of its rows and columns.
type File struct {
	*Matrix
	// IDs names the image of each row.
	IDs []string
	// Labels names the attribute id of each column; nil when the file came
	// without a labels sidecar.
	Labels []string
}

// IDsPath returns where the ids sidecar of an .npy file lives.
func IDsPath(npyPath string) string { return strings.TrimSuffix(npyPath, ".npy") + ".ids.csv" }

// LabelsPath returns where the label-column sidecar of an .npy file lives.
func LabelsPath(npyPath string) string { return strings.TrimSuffix(npyPath, ".npy") + ".labels.csv" }

// Load reads an .npy file and its sidecars and checks that they agree in
// length. The ids sidecar is required; the labels sidecar is optional.
func Load(path string) (*File, error) {
	m, err := ReadNPY(path)
	if err != nil {
		return nil, err
	}
	f := &File{Matrix: m}
	ip := IDsPath(path)
	f.IDs, err = readColumn(ip, "id")
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%s: no ids sidecar %s (one image id per row, header \"id\")", path, ip)
	}
	if err != nil {
		return nil, err
	}
	if len(f.IDs) != m.Rows {
		return nil, fmt.Errorf("%s has %d ids but %s has %d rows", ip, len(f.IDs), path, m.Rows)
	}
	lp := LabelsPath(path)
	f.Labels, err = readColumn(lp, "attribute_id")
	if errors.Is(err, os.ErrNotExist) {
		f.Labels = nil
	} else if err != nil {
		return nil, err
	} else if len(f.Labels) != m.Cols {
		return nil, fmt.Errorf("%s has %d labels but %s has %d columns", lp, len(f.Labels), path, m.Cols)
	}
	return f, nil
}

// Save writes the .npy file and its sidecars, each atomically. The labels
// sidecar is written only when f.Labels is set.
func Save(path string, f *File) error {
	if len(f.IDs) != f.Rows {
		return fmt.Errorf("write %s: %d ids for %d rows", path, len(f.IDs), f.Rows)
	}
	if f.Labels != nil && len(f.Labels) != f.Cols {
		return fmt.Errorf("write %s: %d labels for %d columns", path, len(f.Labels), f.Cols)
	}
	if err := WriteNPY(path, f.Matrix); err != nil {
		return err
	}
	if err := writeColumn(IDsPath(path), "id", f.IDs); err != nil {
		return err
	}
	if f.Labels != nil {
		return writeColumn(LabelsPath(path), "attribute_id", f.Labels)
	}
	return nil
}

func readColumn(path, header string) ([]string, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	r := csv.NewReader(fh)
	r.FieldsPerRecord = -1
	var out []string
	seen := map[string]int{}
	for line := 1; ; line++ {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		v := strings.TrimPrefix(rec[0], "\ufeff")
		if line == 1 {
			if v != header {
				return nil, fmt.Errorf("%s:1: header is %s, want %q", path, snippet.Quote(v), header)
			}
			continue
		}
		if v == "" {
			return nil, fmt.Errorf("%s:%d: empty %s", path, line, header)
		}
		if prev, dup := seen[v]; dup {
			return nil, fmt.Errorf("%s:%d: %s %s repeats line %d", path, line, header, snippet.Quote(v), prev)
		}
		seen[v] = line
		out = append(out, v)
	}
	return out, nil
}

func writeColumn(path, header string, vals []string) error {
	return atomicfile.Write(path, 0o644, func(w io.Writer) error {
		cw := csv.NewWriter(w)
		if err := cw.Write([]string{header}); err != nil {
			return err
		}
		for _, v := range vals {
			if err := cw.Write([]string{v}); err != nil {
				return err
			}
		}
		cw.Flush()
		return cw.Error()
	})
}
