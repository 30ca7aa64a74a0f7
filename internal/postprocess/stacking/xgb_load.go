package stacking

// libxgboost is opened at the first use, not linked: every other command of
// the imet binary (and every bundle `imet export` ships) runs on machines
// without it, and only `imet stack` asks for it.

// #cgo LDFLAGS: -ldl
// #include <dlfcn.h>
// #include <stdlib.h>
// #include <xgboost/c_api.h>
//
// #define XGB_FUNCS(X) \
//   X(const char *, XGBGetLastError, (void), ()) \
//   X(int, XGDMatrixCreateFromMat, (const float *d, bst_ulong r, bst_ulong c, float m, DMatrixHandle *o), (d, r, c, m, o)) \
//   X(int, XGDMatrixSetFloatInfo, (DMatrixHandle h, const char *f, const float *a, bst_ulong n), (h, f, a, n)) \
//   X(int, XGDMatrixFree, (DMatrixHandle h), (h)) \
//   X(int, XGBoosterCreate, (const DMatrixHandle *d, bst_ulong n, BoosterHandle *o), (d, n, o)) \
//   X(int, XGBoosterSetParam, (BoosterHandle h, const char *n, const char *v), (h, n, v)) \
//   X(int, XGBoosterUpdateOneIter, (BoosterHandle h, int i, DMatrixHandle d), (h, i, d)) \
//   X(int, XGBoosterPredict, (BoosterHandle h, DMatrixHandle d, int m, unsigned l, int t, bst_ulong *n, const float **r), (h, d, m, l, t, n, r)) \
//   X(int, XGBoosterFree, (BoosterHandle h), (h))
//
// #define X_PTR(ret, name, params, args) static ret (*p_##name) params;
// XGB_FUNCS(X_PTR)
// #define X_CALL(ret, name, params, args) ret x_##name params { return p_##name args; }
// XGB_FUNCS(X_CALL)
//
// // x_load opens path and resolves every function, or returns the name of
// // the first one missing (or dlerror's message when the library is absent).
// static const char *x_load(const char *path) {
//   void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
//   if (!h) return dlerror();
// #define X_SYM(ret, name, params, args) if (!(p_##name = dlsym(h, #name))) return #name;
//   XGB_FUNCS(X_SYM)
//   return NULL;
// }
import "C"

import (
	"fmt"
	"os"
	"sync"
	"unsafe"
)

// Library is the shared library Load opens: Debian's libxgboost-dev soname,
// or the file IMET_XGBOOST names.
const Library = "libxgboost.so.0"

var (
	loadOnce sync.Once
	loadErr  error
)

// Load opens libxgboost once per process and reports why it cannot.
func Load() error {
	loadOnce.Do(func() {
		path := Library
		if p := os.Getenv("IMET_XGBOOST"); p != "" {
			path = p
		}
		cp := C.CString(path)
		defer C.free(unsafe.Pointer(cp))
		if msg := C.x_load(cp); msg != nil {
			loadErr = fmt.Errorf("xgboost: cannot load %s (%s); scripts/deps.sh installs libxgboost-dev, IMET_XGBOOST names another build", path, C.GoString(msg))
		}
	})
	return loadErr
}
