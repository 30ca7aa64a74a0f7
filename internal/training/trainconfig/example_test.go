package trainconfig_test

import (
	"fmt"

	"imet/internal/training/trainconfig"
)

// Gradual unfreezing with discriminative rates: two stages, each naming
// only what differs from the stage defaults.
func ExampleParse() {
	r, err := trainconfig.Parse("run.yaml", []byte(`
stages:
  - {name: head, epochs: 1, frozen: [stem, stage1, stage2, stage3, stage4], lr: [1.0e-3]}
  - {name: all, epochs: 5, lr: [1.0e-5, 8.0e-5, 5.0e-4], schedule: {name: cosine, warmup_epochs: 0.5}}
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	groups := []string{"stem", "stage1", "stage2", "stage3", "stage4", "head"}
	for _, s := range r.Stages {
		rates, _ := s.GroupRates(groups)
		fmt.Println(s.Name, s.Optimizer.Name, s.Schedule.Name, rates)
	}
	// Output:
	// head adamw constant map[head:0.001]
	// all adamw cosine map[head:0.0005 stage1:1e-05 stage2:1e-05 stage3:8e-05 stage4:8e-05 stem:1e-05]
}
