package main

import (
	"strings"

	"github.com/alecthomas/kong"

	"imet/internal/postprocess/ensemble"
	"imet/internal/postprocess/thresholds"
	"imet/internal/vision/pipeline"
)

// concatMethod is imet ensemble's method that stacks out-of-fold parts
// (ensemble.Concat) instead of combining files (ensemble.Combine).
const concatMethod = "concat"

// foldMethods are the ensemble methods cv may combine its folds with: all
// but weighted, which needs weights cv has no flag for.
func foldMethods() []string {
	var out []string
	for _, m := range ensemble.Methods {
		if m != ensemble.Weighted {
			out = append(out, string(m))
		}
	}
	return out
}

func methodNames() []string {
	var out []string
	for _, m := range ensemble.Methods {
		out = append(out, string(m))
	}
	return out
}

// nameVars are the lists of accepted names that flags' help, defaults and
// enums interpolate as ${name}, each read from the table of the package
// that implements the names, so that a flag's help cannot list a name the
// code lacks (or miss one it has).
func nameVars() kong.Vars {
	return kong.Vars{
		"rules":             strings.Join(thresholds.AllRules, ", "),
		"rules_list":        strings.Join(thresholds.AllRules, ","),
		"methods":           strings.Join(methodNames(), ", "),
		"methods_enum":      strings.Join(append(methodNames(), concatMethod), ","),
		"fold_methods":      strings.Join(foldMethods(), ", "),
		"fold_methods_enum": strings.Join(foldMethods(), ","),
		"pipelines":         strings.Join(pipeline.Names(nil), ", "),
	}
}
