package bundle_test

import (
	"fmt"
	"log"

	"imet/internal/ship/bundle"
)

// Bundling a cgo binary linked with -ldflags=bundle.BuildFlag, with the
// files the program needs at run time. The resulting folder runs on any
// Linux machine with glibc >= m.GlibcMin, without network or package
// manager: copy it and start dist/imet.
func ExampleWrite() {
	m, err := bundle.Write("dist", "bin/imet", []bundle.File{
		{Name: "model/weights.bin", Source: "runs/r1/weights.bin"},
		{Name: "model/labels.txt", Data: []byte("culture::a\ntag::b\n")},
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%d files, libraries %d MB (naive closure %d MB), needs %s\n",
		len(m.Files), m.LibraryBytes>>20, m.NaiveBytes>>20, m.GlibcMin)
}

// What a binary loads, and which DT_NEEDED entries a bundle drops.
func ExampleLibraries() {
	c, err := bundle.Libraries("bin/imet")
	if err != nil {
		log.Fatal(err)
	}
	for _, l := range c.Shipped {
		fmt.Println(l.Name, l.Size, "pruned:", l.Pruned)
	}
	fmt.Println(len(c.Dropped), "libraries of the naive closure are not needed")
}
