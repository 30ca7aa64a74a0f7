package main

import (
	"encoding/json"
	"fmt"
	"strings"

	"imet/internal/base/buildinfo"
	"imet/internal/engine/torch"
)

type versionCmd struct {
	JSON  bool `help:"Print the engine description as JSON."`
	Check bool `help:"Also run a small convolution forward and backward and print its gradient checksum."`
}

func init() {
	register("version", "Print the version, the code revision, and the libtorch in use (CUDA, devices, cuDNN, distributed backends).", "", &versionCmd{})
}

func (v *versionCmd) Run(g *Globals) error {
	rt, err := torch.RuntimeInfo()
	var sum float64
	if err == nil && v.Check {
		sum, err = torch.SelfCheck()
	}
	if v.JSON {
		out := map[string]any{"imet": buildinfo.Read().String(), "engine": rt}
		if v.Check && err == nil {
			out["check"] = sum
		}
		if err != nil {
			out["engine_error"] = err.Error()
		}
		b, _ := json.MarshalIndent(out, "", "  ")
		fmt.Fprintln(g.Stdout, string(b))
		return err
	}
	fmt.Fprintln(g.Stdout, buildinfo.Read().String())
	if err != nil {
		return err
	}
	fmt.Fprintf(g.Stdout, "libtorch %s (%s)\n", rt.Torch, rt.Shim)
	if v.Check {
		fmt.Fprintf(g.Stdout, "check: %.9g\n", sum)
	}
	switch {
	case !rt.CUDA:
		fmt.Fprintln(g.Stdout, "CUDA: not available (CPU only)")
	default:
		names := strings.Join(rt.DeviceNames, ", ")
		if names == "" {
			names = "names need a shim built with the CUDA headers"
		}
		fmt.Fprintf(g.Stdout, "CUDA: %d device(s): %s\n", rt.CUDADevices, names)
		if rt.CuDNN > 0 {
			fmt.Fprintf(g.Stdout, "cuDNN: %d\n", rt.CuDNN)
		} else {
			fmt.Fprintln(g.Stdout, "cuDNN: not available")
		}
	}
	if len(rt.Distributed) == 0 {
		fmt.Fprintln(g.Stdout, "distributed: none (the shim was built without Gloo's headers: libgloo-dev)")
	} else {
		fmt.Fprintf(g.Stdout, "distributed: %s\n", strings.Join(rt.Distributed, ", "))
	}
	return nil
}
