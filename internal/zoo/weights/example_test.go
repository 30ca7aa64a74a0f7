package weights_test

import (
	"fmt"

	"imet/internal/zoo/weights"
)

// A DataParallel training checkpoint in the legacy torch.save format: the
// state dict is found under "state_dict" and its "module." prefix removed.
func ExampleLoad() {
	set, err := weights.Load("testdata/ckpt_legacy.pth")
	if err != nil {
		fmt.Println(err)
		return
	}
	set = weights.StripPrefix(set, "module.")
	for _, name := range set.Names() {
		t := set[name]
		fmt.Println(name, weights.ShapeString(t.Shape), t.DType)
	}
	// Output:
	// 0.weight [4, 3, 3, 3] float32
	// 1.bias [4] float32
	// 1.num_batches_tracked [] int64
	// 1.running_mean [4] float32
	// 1.running_var [4] float32
	// 1.weight [4] float32
}
