package dataset

import (
	"errors"
	"fmt"
	"testing"
)

func TestLabelsFor(t *testing.T) {
	rows := []Row{{"a", []int{1, 2}}, {"b", nil}, {"c", []int{0}}}
	got, err := LabelsFor(rows, []string{"c", "a"})
	if err != nil || fmt.Sprint(got) != "[[0] [1 2]]" {
		t.Fatalf("LabelsFor = %v, %v", got, err)
	}
	_, err = LabelsFor(rows, []string{"a", "zz"})
	var m *MissingIDError
	if !errors.As(err, &m) || m.Index != 1 || m.ID != "zz" {
		t.Fatalf("missing id: %v", err)
	}
}
