package torch

import (
	"fmt"
	"strconv"
	"strings"
)

// DeviceSyntax is the spelling ParseDevice accepts, for messages and the
// generated configuration reference.
const DeviceSyntax = "cpu, cuda or cuda:N"

// ParseDevice reads a device name as PyTorch spells it: "cpu", "cuda"
// (GPU 0) or "cuda:N". It checks the spelling only: whether the GPU exists
// is for whoever places tensors on it.
func ParseDevice(s string) (Device, error) {
	switch {
	case s == "cpu":
		return CPU, nil
	case s == "cuda":
		return CUDA(0), nil
	case strings.HasPrefix(s, "cuda:"):
		n := s[len("cuda:"):]
		// Atoi alone would take "+1"; a device index is plain digits.
		if i, err := strconv.Atoi(n); err == nil && n != "" && n[0] >= '0' && n[0] <= '9' {
			return CUDA(i), nil
		}
	}
	return CPU, fmt.Errorf("device %q: want %s", s, DeviceSyntax)
}
