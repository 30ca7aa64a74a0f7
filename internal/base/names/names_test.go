package names

import (
	"fmt"
	"testing"
)

func TestTable(t *testing.T) {
	tb := &Table[int]{What: "loss"}
	tb.Add(2, "c", "third", 3)
	tb.Add(0, "a", "first", 1)
	tb.Add(1, "b", "second", 2)
	if got := fmt.Sprint(tb.Names()); got != "[a b c]" {
		t.Fatalf("Names %s, want table order [a b c]", got)
	}
	if e, err := tb.Lookup("b"); err != nil || e.Value != 2 || tb.Doc("b") != "second" {
		t.Fatalf("Lookup b = %+v, %v", e, err)
	}
	if err := tb.Check("zz"); err == nil || err.Error() != `unknown loss "zz" (known: a, b, c)` {
		t.Fatalf("Check zz: %v", err)
	}
	defer func() {
		if recover() == nil {
			t.Fatal("a name added twice did not panic")
		}
	}()
	tb.Add(3, "a", "again", 9)
}
