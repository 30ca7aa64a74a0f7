package main

import (
	"fmt"

	"imet/internal/base/buildinfo"
)

type versionCmd struct{}

func init() {
	register("version", "Print the version and the code revision the binary was built from.", "", &versionCmd{})
}

func (v *versionCmd) Run(g *Globals) error {
	fmt.Fprintln(g.Stdout, buildinfo.Read().String())
	return nil
}
