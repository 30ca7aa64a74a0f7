package registry

import (
	"strings"
	"sync"
)

// Tail is an io.Writer that keeps the last lines written to it, to hand to
// Run.Fail and to a failure notification. Tee the run's log into it.
type Tail struct {
	mu      sync.Mutex
	max     int
	lines   []string
	partial string
}

// NewTail keeps the last n lines.
func NewTail(n int) *Tail { return &Tail{max: n} }

// Write implements io.Writer; it never fails.
func (t *Tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.partial + string(p)
	parts := strings.Split(s, "\n")
	t.partial = parts[len(parts)-1]
	for _, l := range parts[:len(parts)-1] {
		t.lines = append(t.lines, strings.TrimRight(l, "\r"))
	}
	if over := len(t.lines) - t.max; over > 0 {
		t.lines = append(t.lines[:0], t.lines[over:]...)
	}
	return len(p), nil
}

// Lines returns the kept lines, oldest first, including an unfinished last
// line (the one a crash often cuts short).
func (t *Tail) Lines() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := append([]string(nil), t.lines...)
	if t.partial != "" {
		out = append(out, t.partial)
	}
	if len(out) > t.max {
		out = out[len(out)-t.max:]
	}
	return out
}
