package models

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Reference writes the architecture tables of docs/weights.md from the
// registry and from each model as built: the key names and files it
// loads, and which modules form each layer group. A test keeps the doc
// equal to it, so registering an architecture documents it.
func Reference() (string, error) {
	var b strings.Builder
	b.WriteString("| architecture | names of | file you can load | key map applied | `variant:` | trained at | parameters |\n")
	b.WriteString("| --- | --- | --- | --- | --- | --- | ---: |\n")
	type built struct {
		name string
		m    Model
	}
	var ms []built
	for _, name := range Names() {
		s, _ := Lookup(name)
		m, err := New(name, Options{NumClasses: 1000})
		if err != nil {
			return "", err
		}
		ms = append(ms, built{name, m})
		var params int
		for _, v := range m.Store().Params() {
			params += numel(v.T.Shape())
		}
		note := s.KeyMapNote
		if note == "" {
			note = "—"
		}
		variants := "—"
		if len(s.Variants) > 0 {
			var vs []string
			for v, what := range s.Variants {
				vs = append(vs, fmt.Sprintf("`%s`: %s", v, what))
			}
			sort.Strings(vs)
			variants = strings.Join(vs, "; ")
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s | %s | %d px | %.1f M |\n", name, s.Source, s.Loads, note, variants, s.InputSize, float64(params)/1e6)
	}
	b.WriteString("\nLayer groups (for freezing and per-group learning rates) and the channels\n")
	b.WriteString("the head options see (`features: last2` adds the penultimate stage's):\n\n")
	b.WriteString("| architecture | stem | stage1 | stage2 | stage3 | stage4 | head | penultimate / last channels |\n")
	b.WriteString("| --- | --- | --- | --- | --- | --- | --- | --- |\n")
	for _, x := range ms {
		s := x.m.Store()
		cols := []string{"`" + x.name + "`"}
		mods := groupModules(x.m)
		for _, g := range []string{"stem", "stage1", "stage2", "stage3", "stage4", "head"} {
			cols = append(cols, strings.Join(mods[g], ", "))
		}
		if got := strings.Join(s.Groups(), " "); got != "stem stage1 stage2 stage3 stage4 head" {
			return "", fmt.Errorf("models: %s has groups %s", x.name, got)
		}
		ch := "—"
		if c, ok := x.m.(*classifier); ok {
			p, l := c.bb.Channels()
			ch = fmt.Sprintf("%d / %d", p, l)
		}
		cols = append(cols, ch)
		fmt.Fprintf(&b, "| %s |\n", strings.Join(cols, " | "))
	}
	for _, x := range ms {
		for _, v := range x.m.Store().Vars() {
			v.T.Free()
		}
	}
	return b.String(), nil
}

func numel(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}

// groupModules names, per group, the modules its tensors belong to: the
// first component of their names, or the first two where the first is a
// container shared between groups (torchvision's "features"), with runs of
// numbered modules written as ranges (features.2-3).
func groupModules(m Model) map[string][]string {
	s := m.Store()
	groupsOf := map[string]map[string]bool{}
	for _, g := range s.Groups() {
		for _, v := range s.Group(g) {
			first := strings.SplitN(v.Name, ".", 2)[0]
			if groupsOf[first] == nil {
				groupsOf[first] = map[string]bool{}
			}
			groupsOf[first][g] = true
		}
	}
	out := map[string][]string{}
	for _, g := range s.Groups() {
		var order []string
		seen := map[string]bool{}
		for _, v := range s.Group(g) {
			parts := strings.Split(v.Name, ".")
			key := parts[0]
			if len(groupsOf[key]) > 1 && len(parts) > 2 {
				key = parts[0] + "." + parts[1]
			}
			if !seen[key] {
				seen[key] = true
				order = append(order, key)
			}
		}
		out[g] = ranges(order)
	}
	return out
}

// ranges writes consecutive "x.N" entries as "x.A-B".
func ranges(keys []string) []string {
	var out []string
	for i := 0; i < len(keys); {
		base, n, ok := numbered(keys[i])
		j := i + 1
		if ok {
			for j < len(keys) {
				b2, n2, ok2 := numbered(keys[j])
				if !ok2 || b2 != base || n2 != n+(j-i) {
					break
				}
				j++
			}
		}
		if ok && j-i > 1 {
			_, last, _ := numbered(keys[j-1])
			out = append(out, fmt.Sprintf("%s.%d-%d", base, n, last))
		} else {
			out = append(out, keys[i])
		}
		i = j
	}
	return out
}

func numbered(k string) (string, int, bool) {
	i := strings.LastIndex(k, ".")
	if i < 0 {
		return "", 0, false
	}
	n, err := strconv.Atoi(k[i+1:])
	return k[:i], n, err == nil
}
