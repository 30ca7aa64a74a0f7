package dataset

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

var bom = []byte{0xEF, 0xBB, 0xBF}

// csvRecord is one parsed row with the line it starts on.
type csvRecord struct {
	line   int
	fields []string
}

// readCSV reads a whole CSV file, checks its header against want, and
// returns the data records. A leading byte-order mark and CRLF line ends are
// accepted and reported as warnings; a syntax error is reported with its
// line and ends reading (the records before it are returned).
func readCSV(c *collector, path string, want []string) ([]csvRecord, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return parseCSV(c, filepath.Base(path), data, want), nil
}

func parseCSV(c *collector, name string, data []byte, want []string) []csvRecord {
	if bytes.HasPrefix(data, bom) {
		c.add(Problem{Severity: Warning, File: name, Line: 1, Msg: "file starts with a UTF-8 byte-order mark (skipped)"})
		data = data[len(bom):]
	}
	if i := bytes.Index(data, []byte("\r\n")); i >= 0 {
		line := 1 + bytes.Count(data[:i], []byte("\n"))
		c.add(Problem{Severity: Warning, File: name, Line: line, Msg: "CRLF line ends (read as LF)"})
	}
	r := csv.NewReader(bytes.NewReader(data))
	r.FieldsPerRecord = -1 // checked here, to name the line and value
	r.ReuseRecord = false
	var out []csvRecord
	first := true
	for {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			var pe *csv.ParseError
			line := 0
			msg := err.Error()
			if errors.As(err, &pe) {
				line = pe.Line
				msg = "malformed CSV: " + pe.Err.Error()
			}
			c.errorf(name, line, "", "%s", msg)
			return out
		}
		line, _ := r.FieldPos(0)
		if first {
			first = false
			if !equalFields(rec, want) {
				if c.errorf(name, line, strings.Join(rec, ","), "header is not %q:", strings.Join(want, ",")) {
					return out
				}
				// A file without a header still gets its first row
				// checked as data, when it has the right shape for it.
				if len(rec) == len(want) && !looksLikeHeader(rec) {
					out = append(out, csvRecord{line, rec})
				}
			}
			continue
		}
		if len(rec) != len(want) {
			if c.errorf(name, line, strings.Join(rec, ","), "want %d fields, got %d:", len(want), len(rec)) {
				return out
			}
			continue
		}
		out = append(out, csvRecord{line, rec})
	}
	if first {
		c.errorf(name, 0, "", "file is empty (want header %q)", strings.Join(want, ","))
	}
	return out
}

func equalFields(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if strings.TrimSpace(a[i]) != b[i] {
			return false
		}
	}
	return true
}

// looksLikeHeader guesses whether a mismatched first row was meant as a
// header (letters only) rather than a data row, so that its fields are not
// also reported as bad data.
func looksLikeHeader(rec []string) bool {
	for _, f := range rec {
		for _, r := range f {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r == '_' || r == ' ') {
				return false
			}
		}
	}
	return true
}

// writeCSV writes records as CSV with LF line ends; fields holding quotes,
// commas or line breaks are quoted the way pandas and Kaggle quote them.
func writeCSV(w io.Writer, header []string, n int, row func(i int) []string) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(header); err != nil {
		return err
	}
	for i := 0; i < n; i++ {
		if err := cw.Write(row(i)); err != nil {
			return fmt.Errorf("row %d: %w", i+1, err)
		}
	}
	cw.Flush()
	return cw.Error()
}
