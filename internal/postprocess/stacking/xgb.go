package stacking

// #include <stdlib.h>
// #include <xgboost/c_api.h>
// const char *x_XGBGetLastError(void);
// int x_XGDMatrixCreateFromMat(const float *d, bst_ulong r, bst_ulong c, float m, DMatrixHandle *o);
// int x_XGDMatrixSetFloatInfo(DMatrixHandle h, const char *f, const float *a, bst_ulong n);
// int x_XGDMatrixFree(DMatrixHandle h);
// int x_XGBoosterCreate(const DMatrixHandle *d, bst_ulong n, BoosterHandle *o);
// int x_XGBoosterSetParam(BoosterHandle h, const char *n, const char *v);
// int x_XGBoosterUpdateOneIter(BoosterHandle h, int i, DMatrixHandle d);
// int x_XGBoosterPredict(BoosterHandle h, DMatrixHandle d, int m, unsigned l, int t, bst_ulong *n, const float **r);
// int x_XGBoosterFree(BoosterHandle h);
import "C"

import (
	"errors"
	"fmt"
	"math"
	"runtime"
	"strings"
	"unsafe"
)

// Param is one XGBoost learning parameter, passed to XGBoosterSetParam as
// text in the order given: the order and spelling python's xgboost.train
// uses, so that the reference script trains the very same model.
type Param struct{ Name, Value string }

func lastError(op string) error {
	msg := C.GoString(C.x_XGBGetLastError())
	// XGBoost appends a C++ backtrace and, for a bad choice, every valid
	// one: keep the sentence that says what was wrong.
	if i := strings.Index(msg, "Stack trace:"); i >= 0 {
		msg = msg[:i]
	}
	if i := strings.Index(msg, "\n"); i >= 0 {
		msg = msg[:i]
	}
	return fmt.Errorf("xgboost %s: %s", op, strings.TrimSpace(msg))
}

// dmatrix holds a dense float32 matrix in XGBoost's own storage; NaN marks
// a missing value (none of the stacking features is ever missing).
type dmatrix struct{ h C.DMatrixHandle }

func newDMatrix(data []float32, rows, cols int, label []float32) (*dmatrix, error) {
	if rows == 0 || len(data) != rows*cols {
		return nil, fmt.Errorf("xgboost: %d values for a %dx%d matrix", len(data), rows, cols)
	}
	var h C.DMatrixHandle
	if C.x_XGDMatrixCreateFromMat((*C.float)(unsafe.Pointer(&data[0])), C.bst_ulong(rows), C.bst_ulong(cols), C.float(math.NaN()), &h) != 0 {
		return nil, lastError("XGDMatrixCreateFromMat")
	}
	d := &dmatrix{h}
	if label != nil {
		field := C.CString("label")
		defer C.free(unsafe.Pointer(field))
		if C.x_XGDMatrixSetFloatInfo(h, field, (*C.float)(unsafe.Pointer(&label[0])), C.bst_ulong(len(label))) != 0 {
			d.free()
			return nil, lastError("XGDMatrixSetFloatInfo")
		}
	}
	return d, nil
}

func (d *dmatrix) free() {
	if d.h != nil {
		C.x_XGDMatrixFree(d.h)
		d.h = nil
	}
}

// Booster is a trained XGBoost model.
type Booster struct{ h C.BoosterHandle }

// Train fits a booster on a dense row-major matrix x (rows x cols) with
// targets y for rounds boosting iterations.
func Train(x []float32, rows, cols int, y []float32, params []Param, rounds int) (*Booster, error) {
	if len(y) != rows {
		return nil, fmt.Errorf("xgboost: %d targets for %d rows", len(y), rows)
	}
	if rounds < 1 {
		return nil, errors.New("xgboost: at least one boosting round is needed")
	}
	if err := Load(); err != nil {
		return nil, err
	}
	// XGBGetLastError is per OS thread: stay on one so that it reports the
	// call that failed.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	d, err := newDMatrix(x, rows, cols, y)
	if err != nil {
		return nil, err
	}
	defer d.free()
	var h C.BoosterHandle
	if C.x_XGBoosterCreate(&d.h, 1, &h) != 0 {
		return nil, lastError("XGBoosterCreate")
	}
	b := &Booster{h}
	runtime.SetFinalizer(b, (*Booster).Free)
	for _, p := range params {
		n, v := C.CString(p.Name), C.CString(p.Value)
		rc := C.x_XGBoosterSetParam(h, n, v)
		C.free(unsafe.Pointer(n))
		C.free(unsafe.Pointer(v))
		if rc != 0 {
			b.Free()
			return nil, lastError(fmt.Sprintf("parameter %s=%s", p.Name, p.Value))
		}
	}
	for it := 0; it < rounds; it++ {
		if C.x_XGBoosterUpdateOneIter(h, C.int(it), d.h) != 0 {
			b.Free()
			return nil, lastError("XGBoosterUpdateOneIter")
		}
	}
	return b, nil
}

// Predict returns the booster's output (a probability under
// binary:logistic) for each row of x.
func (b *Booster) Predict(x []float32, rows, cols int) ([]float32, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	d, err := newDMatrix(x, rows, cols, nil)
	if err != nil {
		return nil, err
	}
	defer d.free()
	var n C.bst_ulong
	var res *C.float
	if C.x_XGBoosterPredict(b.h, d.h, 0, 0, 0, &n, &res) != 0 {
		return nil, lastError("XGBoosterPredict")
	}
	if int(n) != rows {
		return nil, fmt.Errorf("xgboost: %d predictions for %d rows", n, rows)
	}
	// The result lives in the booster's buffer until its next call: copy it.
	out := make([]float32, rows)
	copy(out, unsafe.Slice((*float32)(unsafe.Pointer(res)), rows))
	runtime.KeepAlive(b)
	return out, nil
}

// Free releases the booster; it is safe to call twice.
func (b *Booster) Free() {
	if b.h != nil {
		C.x_XGBoosterFree(b.h)
		b.h = nil
	}
}
