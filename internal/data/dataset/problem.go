package dataset

import (
	"fmt"
	"strings"

	"imet/internal/base/snippet"
)

// Severity says whether a problem stops a data set from being used.
type Severity int

const (
	// Error problems make a data set unusable: Open fails on them.
	Error Severity = iota
	// Warning problems are tolerated by the reader (a byte-order mark is
	// skipped, CRLF line ends are read as LF) but reported by Validate,
	// because other tools in a user's pipeline may not be as forgiving.
	Warning
)

func (s Severity) String() string {
	if s == Warning {
		return "warning"
	}
	return "error"
}

// Problem is one defect found in a data set, located as precisely as the
// reader can: the file, the 1-based line (0 when the problem concerns the
// file as a whole) and the offending value.
type Problem struct {
	Severity Severity
	File     string
	Line     int
	Value    string // the offending value, quoted in the message; may be empty
	Msg      string
}

func (p Problem) Error() string {
	var b strings.Builder
	b.WriteString(p.File)
	if p.Line > 0 {
		fmt.Fprintf(&b, ":%d", p.Line)
	}
	b.WriteString(": ")
	if p.Severity == Warning {
		b.WriteString("warning: ")
	}
	b.WriteString(p.Msg)
	if p.Value != "" {
		fmt.Fprintf(&b, " %s", snippet.Quote(p.Value))
	}
	return b.String()
}

// Problems is the error returned when a data set has defects. It holds
// them in the order they were found (files in the order read, lines in
// order within a file).
type Problems []Problem

func (ps Problems) Error() string {
	switch len(ps) {
	case 0:
		return "no problems"
	case 1:
		return ps[0].Error()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d problems:", len(ps))
	for _, p := range ps {
		b.WriteString("\n  ")
		b.WriteString(p.Error())
	}
	return b.String()
}

// collector gathers problems up to a limit, so that the same parsing code
// serves both the reader (stop at the first error) and the validator
// (collect up to N).
type collector struct {
	max      int // errors to collect before stopping; <= 0 means 1
	warnings bool
	errs     int
	list     Problems
}

func newCollector(max int, warnings bool) *collector {
	if max <= 0 {
		max = 1
	}
	return &collector{max: max, warnings: warnings}
}

// add records a problem and reports whether parsing should stop.
func (c *collector) add(p Problem) bool {
	if p.Severity == Warning {
		if c.warnings {
			c.list = append(c.list, p)
		}
		return false
	}
	if c.errs < c.max {
		c.list = append(c.list, p)
	}
	c.errs++
	return c.errs >= c.max
}

func (c *collector) errorf(file string, line int, value, format string, args ...any) bool {
	return c.add(Problem{Severity: Error, File: file, Line: line, Value: value, Msg: fmt.Sprintf(format, args...)})
}

func (c *collector) full() bool { return c.errs >= c.max }

// err returns the collected problems as an error if any of them is an
// error, nil otherwise.
func (c *collector) err() error {
	if c.errs == 0 {
		return nil
	}
	var only Problems
	for _, p := range c.list {
		if p.Severity == Error {
			only = append(only, p)
		}
	}
	if len(only) == 1 {
		return only[0]
	}
	return only
}
