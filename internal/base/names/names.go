// Package names holds the one table each extension point keeps of its
// kinds (losses, optimizers): every name written once, with a line of
// documentation, and lookups whose errors list the known names.
package names

import (
	"fmt"
	"sort"
	"strings"
)

// Entry is one kind: its name in configuration files, a one-line
// description for generated docs, and what the package builds it from.
type Entry[T any] struct {
	Name, Doc string
	Value     T
	order     int
}

// Table is the kinds of one extension point; what reads a name checks it
// here. The zero value is an empty table.
type Table[T any] struct {
	What    string // "loss", "optimizer": the word errors use
	entries []Entry[T]
}

// Add puts a kind in the table at position order (Names sorts by it);
// a name added twice panics, as two definitions are a programming error.
func (t *Table[T]) Add(order int, name, doc string, v T) {
	for _, e := range t.entries {
		if e.Name == name {
			panic(t.What + ": " + name + " registered twice")
		}
	}
	t.entries = append(t.entries, Entry[T]{name, doc, v, order})
	sort.SliceStable(t.entries, func(a, b int) bool { return t.entries[a].order < t.entries[b].order })
}

// Names lists every name, in table order.
func (t *Table[T]) Names() []string {
	out := make([]string, len(t.entries))
	for i, e := range t.entries {
		out[i] = e.Name
	}
	return out
}

// Doc is the named kind's description ("" if unknown).
func (t *Table[T]) Doc(name string) string {
	e, _ := t.Lookup(name)
	return e.Doc
}

// Check reports whether name is known, listing the known names if not.
func (t *Table[T]) Check(name string) error {
	_, err := t.Lookup(name)
	return err
}

// Lookup returns the named entry.
func (t *Table[T]) Lookup(name string) (Entry[T], error) {
	for _, e := range t.entries {
		if e.Name == name {
			return e, nil
		}
	}
	return Entry[T]{}, fmt.Errorf("unknown %s %q (known: %s)", t.What, name, strings.Join(t.Names(), ", "))
}
