// Command torchprog is the libtorch-linking program the bundle test ships:
// it prints a checksum of a convolution so two runs can be compared.
package main

/*
#cgo CXXFLAGS: -std=c++17 -O1 -I/usr/include -D_GLIBCXX_USE_CXX11_ABI=1
#cgo LDFLAGS: -ltorch -ltorch_cpu -lc10 -lstdc++
int torchprog_run(char *buf, int n);
*/
import "C"

import (
	"fmt"
	"os"
	"unsafe"
)

func main() {
	buf := make([]byte, 512)
	rc := C.torchprog_run((*C.char)(unsafe.Pointer(&buf[0])), C.int(len(buf)))
	out := C.GoString((*C.char)(unsafe.Pointer(&buf[0])))
	if rc != 0 {
		fmt.Fprintln(os.Stderr, "torchprog:", out)
		os.Exit(1)
	}
	fmt.Println(out)
}
