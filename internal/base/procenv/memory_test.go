package procenv

import "testing"

func TestParseMemAvailable(t *testing.T) {
	n, ok := parseMemAvailable([]byte("MemTotal:       16318412 kB\nMemFree:          512000 kB\nMemAvailable:    8159204 kB\n"))
	if !ok || n != 8159204<<10 {
		t.Fatalf("%d %v", n, ok)
	}
	if _, ok := parseMemAvailable([]byte("MemTotal: 1 kB\n")); ok {
		t.Fatal("no MemAvailable line, yet ok")
	}
	if got, ok := MemAvailable(); ok && got <= 0 {
		t.Fatalf("this machine: %d", got)
	}
	if got := FormatBytes(3.5 * (1 << 30)); got != "3.5 GiB" {
		t.Fatal(got)
	}
}
