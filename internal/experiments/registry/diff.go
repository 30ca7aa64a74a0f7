package registry

import (
	"fmt"
	"sort"
	"strings"

	"github.com/goccy/go-yaml"
)

// ConfigDiff is one configuration key whose value differs between runs.
type ConfigDiff struct {
	Key    string   // dotted path, e.g. "optim.lr"
	Values []string // one per run, "" where the key is absent
}

// DiffConfigs compares YAML configurations key by key (nested maps become
// dotted keys) and returns only the keys whose values differ, sorted.
func DiffConfigs(configs ...string) ([]ConfigDiff, error) {
	flat := make([]map[string]string, len(configs))
	keys := map[string]bool{}
	for i, c := range configs {
		var v any
		if err := yaml.Unmarshal([]byte(c), &v); err != nil {
			return nil, fmt.Errorf("config %d: %w", i+1, err)
		}
		flat[i] = map[string]string{}
		flatten("", v, flat[i])
		for k := range flat[i] {
			keys[k] = true
		}
	}
	var out []ConfigDiff
	for k := range keys {
		d := ConfigDiff{Key: k, Values: make([]string, len(configs))}
		differ := false
		for i := range flat {
			d.Values[i] = flat[i][k]
			if d.Values[i] != d.Values[0] {
				differ = true
			}
		}
		if differ {
			out = append(out, d)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

func flatten(prefix string, v any, out map[string]string) {
	switch t := v.(type) {
	case map[string]any:
		for k, sub := range t {
			flatten(join(prefix, k), sub, out)
		}
	case map[any]any:
		for k, sub := range t {
			flatten(join(prefix, fmt.Sprint(k)), sub, out)
		}
	case []any:
		parts := make([]string, len(t))
		for i, e := range t {
			parts[i] = fmt.Sprint(e)
		}
		out[prefix] = "[" + strings.Join(parts, ", ") + "]"
	case nil:
		if prefix != "" {
			out[prefix] = "null"
		}
	default:
		out[prefix] = fmt.Sprint(t)
	}
}

func join(prefix, k string) string {
	if prefix == "" {
		return k
	}
	return prefix + "." + k
}
