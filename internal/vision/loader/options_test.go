package loader

import (
	"imet/internal/base/config"
	"testing"
)

func TestOptionsYAML(t *testing.T) {
	o := Options{Workers: 3}
	err := config.Decode("run.yaml", []byte("batch_size: 64\nshuffle: true\ncache_bytes: 1000\nmix: {mode: cutmix, alpha: 1, p: 0.5}\n"), &o)
	if err != nil || o.BatchSize != 64 || !o.Shuffle || o.CacheBytes != 1000 || o.Mix.Mode != "cutmix" || o.Workers != 3 {
		t.Fatalf("%v %+v", err, o)
	}
	if err := config.Decode("run.yaml", []byte("batchsize: 64\n"), &o); err == nil {
		t.Error("misspelt key accepted")
	}
}
