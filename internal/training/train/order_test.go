package train

import (
	"math"
	"reflect"
	"sort"
	"testing"
)

func TestEpochOrder(t *testing.T) {
	a := EpochOrder(7, 1, 3, 50, []int{4, 9})
	if !reflect.DeepEqual(a, EpochOrder(7, 1, 3, 50, []int{4, 9})) {
		t.Fatal("same inputs, different orders")
	}
	if reflect.DeepEqual(a, EpochOrder(7, 1, 4, 50, []int{4, 9})) {
		t.Fatal("next epoch has the same order")
	}
	s := append([]int(nil), a...)
	sort.Ints(s)
	want := []int{}
	for i := 0; i < 50; i++ {
		want = append(want, i)
		if i == 4 || i == 9 {
			want = append(want, i)
		}
	}
	if !reflect.DeepEqual(s, want) {
		t.Fatalf("order is not every sample once plus the hard ones: %v", s)
	}
}

func TestHardest(t *testing.T) {
	nan := float32(math.NaN())
	losses := []float32{0.1, 0.9, nan, 0.5, 0.9, 0.2, 0.05, 0.7, 0.3, 0.4}
	cases := []struct {
		frac float64
		want []int
	}{
		{0, nil},
		{0.2, []int{1, 4}},
		{0.3, []int{1, 4, 7}},
		{1, []int{0, 1, 3, 4, 5, 6, 7, 8, 9}},
	}
	for _, c := range cases {
		if got := Hardest(losses, c.frac); !reflect.DeepEqual(got, c.want) {
			t.Errorf("frac %g: %v, want %v", c.frac, got, c.want)
		}
	}
}
