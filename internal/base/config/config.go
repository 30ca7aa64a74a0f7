// Package config reads YAML configuration strictly: an unknown or misspelt
// key, a value of the wrong type, or a duplicated key is an error that names
// the file and line, because a silently ignored "learning_rat:" costs a
// nine-hour run.
//
// Packages define their own configuration structs (with yaml tags and a
// `doc` tag for the generated reference); a run's configuration composes
// them. Decode fills a struct that already holds defaults, so keys absent
// from the file keep their default values.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/goccy/go-yaml"
)

// Load reads the YAML file at path into v, a pointer to a struct holding
// defaults.
func Load(path string, v any) error {
	data, err := ReadFile(path)
	if err != nil {
		return err
	}
	return Decode(path, data, v)
}

// ReadFile reads a configuration file of at most MaxBytes, without
// reading further into a larger one (a path to a multi-gigabyte file by
// mistake is refused, not loaded).
func ReadFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxBytes+1))
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	if len(data) > MaxBytes {
		return nil, &Error{File: path, Msg: fmt.Sprintf("larger than %d bytes: a configuration file is at most %d KiB", MaxBytes, MaxBytes>>10)}
	}
	return data, nil
}

// Decode parses YAML data into v. name is used in error messages, normally
// the file's path. An empty document leaves v as it is. A document beyond
// MaxBytes, MaxDepth or MaxValues (aliases expanded) is refused before it
// is decoded, and so is a fractional number for an integer field.
func Decode(name string, data []byte, v any) (err error) {
	// The YAML library is third-party code fed hostile input: a panic in it
	// is a refusal of this document, not the end of the process.
	defer func() {
		if p := recover(); p != nil {
			err = &Error{File: name, Msg: fmt.Sprintf("the YAML parser failed on this document (%v)", p)}
		}
	}()
	if len(bytes.TrimSpace(data)) == 0 {
		return nil
	}
	f, err := checkBounds(name, data)
	if err != nil {
		return err
	}
	if err := checkIntegers(f, v); err != nil {
		var ie *intError
		if errors.As(err, &ie) {
			return &Error{File: name, Line: line(ie.tk), Msg: ie.Error()}
		}
		return &Error{File: name, Msg: err.Error()}
	}
	err = yaml.UnmarshalWithOptions(data, v, yaml.Strict(), yaml.DisallowUnknownField())
	if err == nil {
		return nil
	}
	return &Error{File: name, Line: errorLine(err), Msg: errorMessage(err)}
}

// Marshal renders v as YAML, e.g. to record a run's fully resolved
// configuration.
func Marshal(v any) ([]byte, error) {
	return yaml.MarshalWithOptions(v, yaml.Indent(2), yaml.IndentSequence(true))
}

// Error is a configuration error located in a file.
type Error struct {
	File string
	Line int // 0 when the parser could not locate it
	Msg  string
}

func (e *Error) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s: %s", e.File, e.Msg)
}

func errorLine(err error) int {
	var ye yaml.Error
	if errors.As(err, &ye) {
		if tk := ye.GetToken(); tk != nil && tk.Position != nil {
			return tk.Position.Line
		}
	}
	return 0
}

func errorMessage(err error) string {
	var ye yaml.Error
	if errors.As(err, &ye) {
		msg := ye.GetMessage()
		// goccy phrases unknown keys as `unknown field "x"`; say what to do.
		if strings.HasPrefix(msg, "unknown field") {
			msg += " (misspelt, or not valid in this section)"
		}
		return msg
	}
	return err.Error()
}

// KeyLine is the line of the key at a dotted path ("engine.device",
// "stages[0].lr") in the YAML document data, or 0 when the document does
// not set it, so that checks made after decoding can still name a line.
func KeyLine(data []byte, key string) int {
	p, err := yaml.PathString("$." + key)
	if err != nil {
		return 0
	}
	n, err := p.ReadNode(bytes.NewReader(data))
	if err != nil || n == nil {
		return 0
	}
	tk := n.GetToken()
	if tk == nil || tk.Position == nil {
		return 0
	}
	return tk.Position.Line
}
