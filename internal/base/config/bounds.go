package config

import (
	"fmt"
	"math"
	"reflect"
	"strings"

	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/lexer"
	"github.com/goccy/go-yaml/parser"
	"github.com/goccy/go-yaml/token"
)

// The bounds every configuration document is held to before it is decoded.
// A run configuration or a pipelines file is a few kilobytes nested half a
// dozen levels; the bounds are far above that and far below what costs
// memory: a billion-laughs document (anchors aliasing anchors, 10^9 values
// from 1 KB) or a list nested 100,000 deep otherwise takes the parser down
// with "fatal error: out of memory", which no caller can recover from.
const (
	// MaxBytes is the largest document accepted. The tokenizer holds about
	// 300 bytes per token, so this caps its memory near 80 MB.
	MaxBytes = 256 << 10
	// MaxDepth is the deepest nesting of mappings and lists, block and
	// flow styles together.
	MaxDepth = 64
	// MaxValues is the most values (scalars, mappings and lists) a
	// document may hold once every alias is expanded to what its anchor
	// holds: aliases may repeat a section, not multiply a document.
	MaxValues = 100_000
)

// checkBounds refuses a document beyond MaxBytes, MaxDepth or MaxValues
// and returns its syntax tree for the checks made before decoding. It
// tokenizes first (linear in the input) and measures the depth on the
// tokens, so that the recursive parser only ever sees shallow input.
func checkBounds(name string, data []byte) (*ast.File, error) {
	if len(data) > MaxBytes {
		return nil, &Error{File: name, Msg: fmt.Sprintf("%d bytes: a configuration file is at most %d KiB", len(data), MaxBytes>>10)}
	}
	tokens := lexer.Tokenize(string(data))
	if tk := deepest(tokens); tk != nil {
		return nil, &Error{File: name, Line: line(tk), Msg: fmt.Sprintf("nested more than %d levels deep (at byte offset %d)", MaxDepth, tk.Position.Offset)}
	}
	f, err := parser.Parse(tokens, 0)
	if err != nil {
		return nil, &Error{File: name, Line: errorLine(err), Msg: errorMessage(err)}
	}
	c := &valueCounter{anchors: map[string]int{}}
	for _, d := range f.Docs {
		if err := c.count(d.Body); err != nil {
			return nil, &Error{File: name, Line: line(c.at), Msg: err.Error()}
		}
	}
	return f, nil
}

func line(tk *token.Token) int {
	if tk == nil || tk.Position == nil {
		return 0
	}
	return tk.Position.Line
}

// deepest is the first token nested deeper than MaxDepth, or nil. Flow
// collections nest by their brackets. Block collections nest by column: a
// stack holds the columns of the open entries ("-" and keys followed by
// ":"), and an entry left of the innermost one closes it, so "- - - x" on
// one line nests as deep as it is long.
func deepest(tokens token.Tokens) *token.Token {
	flow := 0
	var cols []int
	for _, tk := range tokens {
		if tk.Position == nil {
			continue
		}
		switch tk.Type {
		case token.DocumentHeaderType, token.DocumentEndType:
			cols = cols[:0]
			continue
		case token.SequenceStartType, token.MappingStartType:
			flow++
		case token.SequenceEndType, token.MappingEndType:
			flow--
		}
		var entry *token.Token
		switch {
		case flow > 0:
		case tk.Type == token.SequenceEntryType:
			entry = tk
		case tk.Type == token.MappingValueType && tk.Prev != nil && tk.Prev.Position != nil:
			entry = tk.Prev
		}
		if entry != nil {
			c := entry.Position.Column
			for len(cols) > 0 && cols[len(cols)-1] > c {
				cols = cols[:len(cols)-1]
			}
			if len(cols) == 0 || cols[len(cols)-1] < c {
				cols = append(cols, c)
			}
		}
		if flow+len(cols) > MaxDepth {
			return tk
		}
	}
	return nil
}

// valueCounter counts a document's values with every alias expanded,
// keeping each anchor's expanded count, so that the count itself takes
// time linear in the document and never expands anything.
type valueCounter struct {
	n       int
	anchors map[string]int
	at      *token.Token // where the limit was crossed
}

func (c *valueCounter) add(n int, at *token.Token) error {
	c.n += n
	if c.n > MaxValues {
		c.at = at
		return fmt.Errorf("more than %d values once aliases are expanded (at byte offset %d); an anchor aliased many times over is refused", MaxValues, offset(at))
	}
	return nil
}

func offset(tk *token.Token) int {
	if tk == nil || tk.Position == nil {
		return 0
	}
	return tk.Position.Offset
}

func (c *valueCounter) count(n ast.Node) error {
	if n == nil || reflect.ValueOf(n).IsNil() {
		return nil
	}
	switch n := n.(type) {
	case *ast.AnchorNode:
		before := c.n
		if err := c.count(n.Value); err != nil {
			return err
		}
		c.anchors[anchorName(n.Name)] = c.n - before
		return nil
	case *ast.AliasNode:
		size, ok := c.anchors[anchorName(n.Value)]
		if !ok {
			size = 1 // the decoder reports the unknown anchor
		}
		return c.add(size, n.GetToken())
	case *ast.MappingNode:
		if err := c.add(1, n.GetToken()); err != nil {
			return err
		}
		for _, v := range n.Values {
			if err := c.count(v); err != nil {
				return err
			}
		}
		return nil
	case *ast.MappingValueNode:
		if err := c.count(n.Key); err != nil {
			return err
		}
		return c.count(n.Value)
	case *ast.MappingKeyNode:
		return c.count(n.Value)
	case *ast.SequenceNode:
		if err := c.add(1, n.GetToken()); err != nil {
			return err
		}
		for _, v := range n.Values {
			if err := c.count(v); err != nil {
				return err
			}
		}
		return nil
	case *ast.TagNode:
		return c.count(n.Value)
	case *ast.DocumentNode:
		return c.count(n.Body)
	case *ast.CommentNode:
		return nil
	}
	return c.add(1, n.GetToken())
}

func anchorName(n ast.Node) string {
	if n == nil || reflect.ValueOf(n).IsNil() {
		return ""
	}
	if tk := n.GetToken(); tk != nil {
		return tk.Value
	}
	return n.String()
}

// checkIntegers refuses a fractional number where v's type holds an
// integer: the decoder would truncate `batch_size: 8.5` to 8 without a
// word. It walks the syntax tree beside the type, by yaml key; keys the
// type does not know are left to the decoder's strict mode.
func checkIntegers(f *ast.File, v any) error {
	anchors := map[string]ast.Node{}
	for _, d := range f.Docs {
		if err := integral(d.Body, reflect.TypeOf(v), anchors); err != nil {
			return err
		}
	}
	return nil
}

// intError is a fractional value where an integer belongs.
type intError struct {
	tk  *token.Token
	val string
}

func (e *intError) Error() string {
	return fmt.Sprintf("%s is not an integer: this key takes a whole number", e.val)
}

func integral(n ast.Node, t reflect.Type, anchors map[string]ast.Node) error {
	if n == nil || reflect.ValueOf(n).IsNil() || t == nil {
		return nil
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch x := n.(type) {
	case *ast.AnchorNode:
		err := integral(x.Value, t, anchors)
		anchors[anchorName(x.Name)] = x.Value // after: an alias inside its own anchor is not followed
		return err
	case *ast.AliasNode:
		// The anchor was checked against the type where it stands; here it
		// may stand for another one.
		if a, ok := anchors[anchorName(x.Value)]; ok {
			err := integral(a, t, anchors)
			if ie, ok := err.(*intError); ok {
				ie.tk = x.GetToken() // the line where it is used this way
			}
			return err
		}
		return nil
	case *ast.TagNode:
		return integral(x.Value, t, anchors)
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if fl, ok := n.(*ast.FloatNode); ok && fl.Value != math.Trunc(fl.Value) {
			return &intError{tk: fl.GetToken(), val: fl.GetToken().Value}
		}
	case reflect.Slice, reflect.Array:
		if s, ok := n.(*ast.SequenceNode); ok {
			for _, e := range s.Values {
				if err := integral(e, t.Elem(), anchors); err != nil {
					return err
				}
			}
		}
	case reflect.Map:
		for _, mv := range mappingValues(n) {
			if err := integral(mv.Value, t.Elem(), anchors); err != nil {
				return err
			}
		}
	case reflect.Struct:
		for _, mv := range mappingValues(n) {
			if ft, ok := fieldType(t, keyName(mv.Key)); ok {
				if err := integral(mv.Value, ft, anchors); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func mappingValues(n ast.Node) []*ast.MappingValueNode {
	switch m := n.(type) {
	case *ast.MappingNode:
		return m.Values
	case *ast.MappingValueNode:
		return []*ast.MappingValueNode{m}
	}
	return nil
}

func keyName(k ast.MapKeyNode) string {
	if k == nil || reflect.ValueOf(k).IsNil() {
		return ""
	}
	if mk, ok := k.(*ast.MappingKeyNode); ok && mk.Value != nil {
		if tk := mk.Value.GetToken(); tk != nil {
			return tk.Value
		}
	}
	if tk := k.GetToken(); tk != nil {
		return tk.Value
	}
	return ""
}

// fieldType is the type of t's field decoded from key: its yaml tag's
// name, or its lower-cased Go name, looking into inlined structs.
func fieldType(t reflect.Type, key string) (reflect.Type, bool) {
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("yaml")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" {
			continue
		}
		if strings.Contains(opts, "inline") {
			ft := f.Type
			for ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				if got, ok := fieldType(ft, key); ok {
					return got, true
				}
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		if name == key {
			return f.Type, true
		}
	}
	return nil, false
}
