package figures

import (
	"errors"
	"fmt"
	"path/filepath"

	"imet/internal/experiments/registry"
	"imet/internal/training/trainconfig"
)

// ErrNoCV says a run recorded no out-of-fold probabilities and threshold
// file, so it has no cross-validation figures (a train run, or a cv run
// that did not get that far).
var ErrNoCV = errors.New("figures: the run recorded no oof.npy and thresholds.json")

// SourcesOf finds a cv run's sources from its registry record: oof.npy
// and thresholds.json among its artifacts (as imet cv records them, kinds
// "probabilities" and "thresholds"; the newest of each), the data set and
// folds file from its recorded configuration. data, when not empty,
// replaces the configuration's data root, for a data set moved since; a
// relative folds path then follows it.
func SourcesOf(rec *registry.Record, arts []registry.Artifact, data string) (Sources, error) {
	var src Sources
	for _, a := range arts {
		switch {
		case a.Kind == "probabilities" && filepath.Base(a.Path) == "oof.npy":
			src.OOF = a.Path
		case a.Kind == "thresholds":
			src.Thresholds = a.Path
		}
	}
	if src.OOF == "" || src.Thresholds == "" {
		return src, ErrNoCV
	}
	if rec.Config == "" {
		return src, fmt.Errorf("run %d recorded no configuration to find its data set in", rec.ID)
	}
	cfg, err := trainconfig.Decode(fmt.Sprintf("run %d's configuration", rec.ID), []byte(rec.Config))
	if err != nil {
		return src, err
	}
	if data != "" {
		cfg.Data.Root = data
	}
	src.Data, src.Folds = cfg.Data.Root, cfg.Data.FoldsPath()
	return src, nil
}
