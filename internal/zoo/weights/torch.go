package weights

import (
	"archive/zip"
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/big"
	"os"
	"sort"
	"strings"
)

// legacyMagic is the number torch.save pickles first in its legacy format.
var legacyMagic, _ = new(big.Int).SetString("1950a86a20f9469cfc6c", 16)

// storageDTypes maps torch's typed-storage class names to element types.
var storageDTypes = map[string]DType{
	"FloatStorage":    Float32,
	"DoubleStorage":   Float64,
	"HalfStorage":     Float16,
	"BFloat16Storage": BFloat16,
	"LongStorage":     Int64,
	"IntStorage":      Int32,
	"ShortStorage":    Int16,
	"CharStorage":     Int8,
	"ByteStorage":     Uint8,
	"BoolStorage":     Bool,
}

// storage is one torch storage: the element type and its raw bytes, filled
// after the pickle (legacy) or on first use (zip).
type storage struct {
	key   string
	dtype DType
	numel int64
	data  []byte
	// root/offset describe a view into another storage (old legacy files).
	root   *storage
	offset int64
}

func (s *storage) bytes() []byte {
	if s.root != nil {
		b := s.root.bytes()
		es := int64(elemSize(s.dtype))
		avail := int64(len(b)) / es
		if s.offset < 0 || s.numel < 0 || s.offset > avail || s.numel > avail-s.offset {
			return nil
		}
		return b[s.offset*es : (s.offset+s.numel)*es]
	}
	return s.data
}

// tensorRef is what _rebuild_tensor(_v2) produces: a strided view of a
// storage, materialised once all storage bytes are known.
type tensorRef struct {
	st     *storage
	offset int64
	size   []int64
	stride []int64
}

func (r *tensorRef) materialise(order binary.ByteOrder) (*Tensor, error) {
	raw := r.st.bytes()
	es := int64(elemSize(r.st.dtype))
	n, ok := checkedNumel(r.size)
	if !ok {
		return nil, fmt.Errorf("bad shape %v", r.size)
	}
	out := &Tensor{Shape: append([]int64{}, r.size...), DType: r.st.dtype}
	if n == 0 {
		out.Data = []float32{}
		return out, nil
	}
	// Highest element index the view touches, to check bounds once,
	// without overflowing on corrupt sizes or strides.
	avail := int64(len(raw)) / es
	maxIdx := r.offset
	if maxIdx < 0 || maxIdx >= avail {
		return nil, fmt.Errorf("storage offset %d outside its storage of %d elements", r.offset, avail)
	}
	for i, d := range r.size {
		st := r.stride[i]
		if st < 0 {
			return nil, fmt.Errorf("negative stride %v", r.stride)
		}
		if d > 1 && st > (avail-maxIdx)/(d-1) {
			maxIdx = avail
			break
		}
		maxIdx += (d - 1) * st
	}
	// A view may hold more elements than its storage (expand gives stride
	// 0), but not absurdly more: that is a corrupt file, not a weight.
	if n > avail && n > 1<<26 {
		return nil, fmt.Errorf("view of %d elements over a storage of %d", n, avail)
	}
	if maxIdx >= avail {
		return nil, fmt.Errorf("view (offset %d, size %v, stride %v) runs past its storage of %d elements",
			r.offset, r.size, r.stride, int64(len(raw))/es)
	}
	if isContiguous(r.size, r.stride) {
		// One pass over just the view's bytes: the common case.
		vals, err := decode(raw[r.offset*es:(r.offset+n)*es], r.st.dtype, order)
		if err != nil {
			return nil, err
		}
		out.Data = vals
		return out, nil
	}
	vals, err := decode(raw, r.st.dtype, order)
	if err != nil {
		return nil, err
	}
	out.Data = make([]float32, n)
	idx := make([]int64, len(r.size))
	for i := int64(0); i < n; i++ {
		pos := r.offset
		for d := range idx {
			pos += idx[d] * r.stride[d]
		}
		out.Data[i] = vals[pos]
		for d := len(idx) - 1; d >= 0; d-- {
			idx[d]++
			if idx[d] < r.size[d] {
				break
			}
			idx[d] = 0
		}
	}
	return out, nil
}

// checkedNumel is the element count of shape, false for negative or
// overflowing dimensions.
func checkedNumel(shape []int64) (int64, bool) {
	n := int64(1)
	for _, d := range shape {
		if d < 0 {
			return 0, false
		}
		if d == 0 {
			return 0, true
		}
		if n > (1<<40)/d {
			return 0, false
		}
		n *= d
	}
	return n, true
}

func isContiguous(size, stride []int64) bool {
	want := int64(1)
	for i := len(size) - 1; i >= 0; i-- {
		if size[i] != 1 && stride[i] != want {
			return false
		}
		want *= size[i]
	}
	return true
}

// torchReader holds the storages of one file while its pickle is parsed.
type torchReader struct {
	path     string
	storages map[string]*storage
	order    binary.ByteOrder
}

func asInt(v any) (int64, bool) {
	switch x := v.(type) {
	case int64:
		return x, true
	case bool:
		if x {
			return 1, true
		}
		return 0, true
	}
	return 0, false
}

func asInts(v any) ([]int64, bool) {
	var items []any
	switch x := v.(type) {
	case pyTuple:
		items = x
	case *pyList:
		items = x.Items
	default:
		return nil, false
	}
	out := make([]int64, len(items))
	for i, it := range items {
		n, ok := asInt(it)
		if !ok {
			return nil, false
		}
		out[i] = n
	}
	return out, true
}

// persistent resolves ('storage', type, key, location, numel[, view]).
func (tr *torchReader) persistent(id any) (any, error) {
	t, ok := id.(pyTuple)
	if !ok || len(t) < 5 {
		return nil, fmt.Errorf("unexpected persistent id %v", id)
	}
	if kind, _ := t[0].(string); kind != "storage" {
		return nil, fmt.Errorf("unsupported persistent id kind %v (only storages are read)", t[0])
	}
	g, ok := t[1].(pyGlobal)
	if !ok {
		return nil, fmt.Errorf("storage type %v is not a class", t[1])
	}
	dt, ok := storageDTypes[g.Name]
	if !ok {
		return nil, fmt.Errorf("unsupported storage type %s", g)
	}
	key := fmt.Sprint(t[2])
	n, _ := asInt(t[4])
	st, ok := tr.storages[key]
	if !ok {
		st = &storage{key: key, dtype: dt, numel: n}
		tr.storages[key] = st
	}
	if len(t) >= 6 && t[5] != nil {
		view, ok := t[5].(pyTuple)
		if !ok || len(view) != 3 {
			return nil, fmt.Errorf("unexpected storage view %v", t[5])
		}
		vkey := fmt.Sprint(view[0])
		off, _ := asInt(view[1])
		vn, _ := asInt(view[2])
		if v, ok := tr.storages[vkey]; ok {
			return v, nil
		}
		v := &storage{key: vkey, dtype: dt, numel: vn, root: st, offset: off}
		tr.storages[vkey] = v
		return v, nil
	}
	return st, nil
}

// reduce recognises the torch rebuild functions; other calls stay pyCalls.
func (tr *torchReader) reduce(fn any, args pyTuple) (any, bool, error) {
	g, ok := fn.(pyGlobal)
	if !ok {
		return nil, false, nil
	}
	switch g.String() {
	case "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_tensor":
		if len(args) < 4 {
			return nil, false, fmt.Errorf("%s with %d arguments", g, len(args))
		}
		st, ok := args[0].(*storage)
		if !ok {
			return nil, false, fmt.Errorf("%s: first argument %T is not a storage", g, args[0])
		}
		off, ok1 := asInt(args[1])
		size, ok2 := asInts(args[2])
		stride, ok3 := asInts(args[3])
		if !ok1 || !ok2 || !ok3 || len(size) != len(stride) {
			return nil, false, fmt.Errorf("%s: bad offset/size/stride %v %v %v", g, args[1], args[2], args[3])
		}
		return &tensorRef{st: st, offset: off, size: size, stride: stride}, true, nil
	case "torch._utils._rebuild_parameter", "torch._utils._rebuild_parameter_with_state":
		if len(args) < 1 {
			return nil, false, fmt.Errorf("%s without arguments", g)
		}
		return args[0], true, nil
	case "torch._utils._rebuild_qtensor", "torch._utils._rebuild_sparse_tensor",
		"torch._utils._rebuild_sparse_csr_tensor", "torch._utils._rebuild_meta_tensor_no_storage",
		"torch._utils._rebuild_wrapper_subclass", "torch._utils._rebuild_device_tensor_from_numpy":
		return nil, false, fmt.Errorf("%s: quantised, sparse, meta and subclass tensors are not supported", g)
	}
	return nil, false, nil
}

// ReadTorch reads a PyTorch checkpoint written by torch.save, in the zip
// format (torch >= 1.6) or the legacy one (older releases, and any file
// saved with _use_new_zipfile_serialization=False).
//
// The state dict is found this way: if the pickled object is a dict whose
// values are all tensors, that is it. Otherwise, if it has one of the keys
// checkpoints use for the model ("state_dict", "model_state_dict", "model",
// "module", "net", "network", "weights", "params"), that value is searched
// the same way. Failing both, every tensor reachable through nested dicts
// is returned under its dotted path. Shared storages and non-contiguous
// views are materialised as separate dense tensors.
func ReadTorch(path string) (Set, error) {
	format, err := Detect(path)
	if err != nil {
		return nil, err
	}
	var root any
	tr := &torchReader{path: path, storages: map[string]*storage{}, order: binary.LittleEndian}
	switch format {
	case FormatTorchZip:
		root, tr.order, err = tr.readZip(path)
	case FormatTorchLegacy:
		root, err = tr.readLegacy(path)
	default:
		return nil, fmt.Errorf("%s: %s is not a PyTorch checkpoint", path, format)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	refs := map[string]*tensorRef{}
	collectTensors(findStateDict(root), "", refs)
	if len(refs) == 0 {
		return nil, fmt.Errorf("%s: no tensors found (top-level object is %s)", path, describe(root))
	}
	set := Set{}
	for name, ref := range refs {
		t, err := ref.materialise(tr.order)
		if err != nil {
			return nil, fmt.Errorf("%s: tensor %s: %w", path, name, err)
		}
		set[name] = t
	}
	return set, nil
}

func (tr *torchReader) unpickler(r io.Reader, limit int64) *unpickler {
	u := newUnpickler(r, limit)
	u.persistent = tr.persistent
	u.reduce = tr.reduce
	return u
}

func (tr *torchReader) readZip(path string) (any, binary.ByteOrder, error) {
	zr, err := zip.OpenReader(path)
	if err != nil {
		return nil, nil, err
	}
	var archiveSize uint64
	if fi, err := os.Stat(path); err == nil {
		archiveSize = uint64(fi.Size())
	}
	// The files are small to moderate; the zip is read eagerly so the
	// reader can be closed here.
	defer zr.Close()
	var pkl *zip.File
	prefix := ""
	files := map[string]*zip.File{}
	for _, f := range zr.File {
		files[f.Name] = f
		if strings.HasSuffix(f.Name, "/data.pkl") || f.Name == "data.pkl" {
			if pkl == nil {
				pkl = f
				prefix = strings.TrimSuffix(f.Name, "data.pkl")
			}
		}
	}
	if pkl == nil {
		return nil, nil, errors.New("zip archive without data.pkl (a TorchScript archive? only torch.save files are read)")
	}
	var order binary.ByteOrder = binary.LittleEndian
	if bo, ok := files[prefix+"byteorder"]; ok {
		b, err := readZipFile(bo, archiveSize)
		if err != nil {
			return nil, nil, err
		}
		if strings.TrimSpace(string(b)) == "big" {
			order = binary.BigEndian
		}
	}
	rc, err := pkl.Open()
	if err != nil {
		return nil, nil, err
	}
	root, err := tr.unpickler(rc, int64(pkl.UncompressedSize64)+1).load()
	rc.Close()
	if err != nil {
		return nil, nil, fmt.Errorf("data.pkl: %w", err)
	}
	// Read every referenced storage now, while the archive is open.
	keys := make([]string, 0, len(tr.storages))
	for k := range tr.storages {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		st := tr.storages[k]
		if st.root != nil {
			continue
		}
		f, ok := files[prefix+"data/"+k]
		if !ok {
			return nil, nil, fmt.Errorf("storage %s missing from the archive", k)
		}
		b, err := readZipFile(f, archiveSize)
		if err != nil {
			return nil, nil, fmt.Errorf("storage %s: %w", k, err)
		}
		if int64(len(b)) < st.numel*int64(elemSize(st.dtype)) {
			return nil, nil, fmt.Errorf("storage %s: %d bytes, want %d", k, len(b), st.numel*int64(elemSize(st.dtype)))
		}
		st.data = b
	}
	return root, order, nil
}

func readZipFile(f *zip.File, archiveSize uint64) ([]byte, error) {
	rc, err := f.Open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	if f.Method != zip.Store {
		// torch.save stores; anything else is read without trusting sizes.
		return io.ReadAll(rc)
	}
	if f.UncompressedSize64 != f.CompressedSize64 || f.UncompressedSize64 > archiveSize {
		return nil, fmt.Errorf("%s: implausible size %d", f.Name, f.UncompressedSize64)
	}
	b := make([]byte, f.UncompressedSize64)
	if _, err := io.ReadFull(rc, b); err != nil {
		return nil, err
	}
	// Reading to EOF lets archive/zip verify the CRC.
	if n, err := rc.Read(make([]byte, 1)); n != 0 || (err != nil && err != io.EOF) {
		if err == nil {
			err = errors.New("longer than its header says")
		}
		return nil, fmt.Errorf("%s: %w", f.Name, err)
	}
	return b, nil
}

func (tr *torchReader) readLegacy(path string) (any, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	size := fi.Size()
	br := bufio.NewReaderSize(f, 1<<20)
	magic, err := newUnpickler(br, size).load()
	if err != nil {
		return nil, fmt.Errorf("magic number: %w", err)
	}
	if m, ok := magic.(*big.Int); !ok || m.Cmp(legacyMagic) != 0 {
		return nil, fmt.Errorf("not a torch.save file: magic number %v", magic)
	}
	if _, err := newUnpickler(br, size).load(); err != nil { // protocol version
		return nil, fmt.Errorf("protocol version: %w", err)
	}
	sysInfo, err := newUnpickler(br, size).load()
	if err != nil {
		return nil, fmt.Errorf("sys_info: %w", err)
	}
	order := binary.ByteOrder(binary.LittleEndian)
	if d, ok := sysInfo.(*pyDict); ok {
		if le, ok := d.Values["little_endian"].(bool); ok && !le {
			order = binary.BigEndian
		}
	}
	tr.order = order
	root, err := tr.unpickler(br, size).load()
	if err != nil {
		return nil, fmt.Errorf("main pickle: %w", err)
	}
	keysObj, err := newUnpickler(br, size).load()
	if err != nil {
		return nil, fmt.Errorf("storage keys: %w", err)
	}
	keyList, ok := keysObj.(*pyList)
	if !ok {
		return nil, fmt.Errorf("storage keys: got %s, want a list", describe(keysObj))
	}
	for _, k := range keyList.Items {
		key := fmt.Sprint(k)
		var n int64
		if err := binary.Read(br, order, &n); err != nil {
			return nil, fmt.Errorf("storage %s: size: %w", key, err)
		}
		st, ok := tr.storages[key]
		if !ok {
			return nil, fmt.Errorf("storage %s listed but never referenced", key)
		}
		if n < 0 || n > size/int64(elemSize(st.dtype)) {
			return nil, fmt.Errorf("storage %s: size %d exceeds the file", key, n)
		}
		st.data = make([]byte, n*int64(elemSize(st.dtype)))
		if _, err := io.ReadFull(br, st.data); err != nil {
			return nil, fmt.Errorf("storage %s: data truncated: %w", key, err)
		}
	}
	for k, st := range tr.storages {
		if st.root == nil && st.data == nil {
			return nil, fmt.Errorf("storage %s has no data in the file", k)
		}
	}
	return root, nil
}

// stateDictKeys are the keys training scripts wrap a state dict in.
var stateDictKeys = []string{"state_dict", "model_state_dict", "model", "module", "net", "network", "weights", "params"}

func findStateDict(v any) any {
	for depth := 0; depth < 8; depth++ { // bounded: a dict may contain itself
		d, ok := v.(*pyDict)
		if !ok || allTensors(d) {
			return v
		}
		next := any(nil)
		for _, k := range stateDictKeys {
			if sub, ok := d.Values[k].(*pyDict); ok {
				next = sub
				break
			}
		}
		if next == nil {
			return v
		}
		v = next
	}
	return v
}

func allTensors(d *pyDict) bool {
	if len(d.Keys) == 0 {
		return false
	}
	for _, k := range d.Keys {
		if _, ok := d.Values[k].(*tensorRef); !ok {
			return false
		}
	}
	return true
}

// walk bounds collectTensors on hostile pickles: a list can contain
// itself, and shared nested tuples make a tree exponentially larger than
// the file.
type walk struct {
	seen   map[any]bool
	budget int
}

func collectTensors(v any, prefix string, out map[string]*tensorRef) {
	w := &walk{seen: map[any]bool{}, budget: 1 << 20}
	w.collect(v, prefix, out, 0)
}

func (w *walk) collect(v any, prefix string, out map[string]*tensorRef, depth int) {
	if w.budget--; w.budget < 0 || depth > 64 {
		return
	}
	switch x := v.(type) {
	case *tensorRef:
		out[strings.TrimSuffix(prefix, ".")] = x
	case *pyDict:
		if w.seen[x] {
			return
		}
		w.seen[x] = true
		for _, k := range x.Keys {
			w.collect(x.Values[k], prefix+fmt.Sprint(k)+".", out, depth+1)
		}
	case *pyList:
		if w.seen[x] {
			return
		}
		w.seen[x] = true
		for i, it := range x.Items {
			w.collect(it, fmt.Sprintf("%s%d.", prefix, i), out, depth+1)
		}
	case pyTuple:
		for i, it := range x {
			w.collect(it, fmt.Sprintf("%s%d.", prefix, i), out, depth+1)
		}
	}
}

func describe(v any) string {
	switch x := v.(type) {
	case *pyDict:
		keys := make([]string, 0, 5)
		for i, k := range x.Keys {
			if i == 5 {
				keys = append(keys, "...")
				break
			}
			keys = append(keys, fmt.Sprint(k))
		}
		return fmt.Sprintf("a dict with keys %v", keys)
	case *pyCall:
		if g, ok := x.Func.(pyGlobal); ok {
			return "an object built by " + g.String()
		}
		return "an object"
	case nil:
		return "None"
	}
	return fmt.Sprintf("%T", v)
}
