package trainconfig

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"reflect"
	"regexp"
	"sort"
	"strings"
)

// Fingerprint flattens every field of r that shapes the computation into
// sorted "path = value" lines, e.g. "stages[2].lr[1] = 8e-05". Fields
// tagged resume:"free" (checkpoint cadence, thread count, worker count) are
// left out: changing them between sessions is allowed. The lines are stored
// in every checkpoint so that Diff can say what changed.
func (r *Run) Fingerprint() []string {
	var out []string
	flatten(reflect.ValueOf(*r), "", &out)
	sort.Strings(out)
	return out
}

// Hash is a short digest of Fingerprint, for file names and quick checks.
func Hash(fingerprint []string) string {
	h := sha256.Sum256([]byte(strings.Join(fingerprint, "\n")))
	return hex.EncodeToString(h[:8])
}

func flatten(v reflect.Value, path string, out *[]string) {
	switch v.Kind() {
	case reflect.Struct:
		t := v.Type()
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			if !f.IsExported() || f.Tag.Get("resume") == "free" {
				continue
			}
			name := strings.Split(f.Tag.Get("yaml"), ",")[0]
			if name == "" {
				name = strings.ToLower(f.Name)
			}
			p := name
			if path != "" {
				p = path + "." + name
			}
			flatten(v.Field(i), p, out)
		}
	case reflect.Slice, reflect.Array:
		if v.Len() == 0 {
			*out = append(*out, path+" = []")
		}
		for i := 0; i < v.Len(); i++ {
			flatten(v.Index(i), fmt.Sprintf("%s[%d]", path, i), out)
		}
	default:
		*out = append(*out, fmt.Sprintf("%s = %v", path, v.Interface()))
	}
}

// added lists the settings that appeared after checkpoints already
// existed, each with the value that computes what imet computed before it:
// a fingerprint without the setting matches a configuration holding that
// value. Stage indices are written [].
var added = map[string]string{
	"engine.precision":                  PrecisionFP32,
	"engine.channels_last":              "false",
	"model.freeze_bn":                   "false",
	"model.from":                        "",
	"model.variant":                     "",
	"stages[].optimizer.clip_grad_norm": "0",
	"data.labels":                       "[]",
	"targets.train_csv":                 "",
	"targets.soft.file":                 "",
	"targets.soft.rule":                 "max",
	"targets.soft.alpha":                "0.7",
	"targets.pseudo.file":               "",
	"targets.pseudo.share":              "0.25",
	"targets.pseudo.min_confidence":     "0",
	"targets.pseudo.threshold":          "0",
}

var index = regexp.MustCompile(`\[\d+\]`)

// Diff compares two fingerprints and describes each difference as
// "path: was X, now Y" (or only in one of them). Empty means compatible.
// A was fingerprint written before engine.precision replaced engine.bf16
// reads as the precision it meant.
func Diff(was, now []string) []string {
	split := func(lines []string) map[string]string {
		m := map[string]string{}
		for _, l := range lines {
			k, v, _ := strings.Cut(l, " = ")
			m[k] = v
		}
		return m
	}
	a, b := split(was), split(now)
	if v, ok := a["engine.bf16"]; ok {
		if _, has := a["engine.precision"]; !has {
			a["engine.precision"] = PrecisionFP32
			if v == "true" {
				a["engine.precision"] = PrecisionBF16
			}
		}
		delete(a, "engine.bf16")
	}
	for k, vb := range b {
		if _, ok := a[k]; !ok && added[index.ReplaceAllString(k, "[]")] == vb {
			a[k] = vb
		}
	}
	var keys []string
	for k := range a {
		keys = append(keys, k)
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var out []string
	for _, k := range keys {
		va, ina := a[k]
		vb, inb := b[k]
		switch {
		case !ina:
			out = append(out, fmt.Sprintf("%s: not in the checkpoint's config, now %s", k, vb))
		case !inb:
			out = append(out, fmt.Sprintf("%s: was %s, not in this config", k, va))
		case va != vb:
			out = append(out, fmt.Sprintf("%s: was %s, now %s", k, va, vb))
		}
	}
	return out
}
