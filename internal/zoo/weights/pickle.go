package weights

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"strconv"
	"strings"
	"sync/atomic"

	"imet/internal/base/snippet"
)

// The unpickler below understands the subset of Python's pickle protocols
// 0-5 that torch.save emits (protocol 2 by default) plus the plain
// containers a training checkpoint wraps around a state dict. It never
// executes anything: a GLOBAL becomes a pyGlobal naming the class, REDUCE
// becomes a pyCall, and the torch-specific reading of those happens in
// torch.go, after the whole pickle has been parsed.

// pyGlobal is a reference to a Python class or function (module.name).
type pyGlobal struct{ Module, Name string }

func (g pyGlobal) String() string { return g.Module + "." + g.Name }

// pyTuple is a Python tuple.
type pyTuple []any

// pyList is a Python list; a pointer, because APPEND mutates a list the
// memo may already hold.
type pyList struct{ Items []any }

// pyDict keeps insertion order, as state dicts are OrderedDicts and the
// order of parameters is what users see in reports.
type pyDict struct {
	Keys   []any
	Values map[any]any
	// State is what BUILD attached (OrderedDict._metadata, for one).
	State any
}

func newDict() *pyDict { return &pyDict{Values: map[any]any{}} }

func (d *pyDict) set(k, v any) {
	k = hashable(k)
	if _, ok := d.Values[k]; !ok {
		d.Keys = append(d.Keys, k)
	}
	d.Values[k] = v
}

// opaqueKey stands for a dict key Go cannot hash (a tuple, a list).
type opaqueKey struct{ n uint64 }

var opaqueKeys atomic.Uint64

// hashable turns values Go cannot use as map keys into ones it can. State
// dict keys are strings and ints; other keys only occur in odd pickles and
// are never looked up, so each becomes a unique opaque key (printing them
// instead could take exponential time on shared nested tuples).
func hashable(k any) any {
	switch v := k.(type) {
	case []byte:
		return string(v)
	case pyTuple, *pyList, *pyDict:
		return opaqueKey{opaqueKeys.Add(1)}
	}
	return k
}

// pyCall is the result of calling (REDUCE/NEWOBJ) a global with args; BUILD
// may later attach State.
type pyCall struct {
	Func  any
	Args  pyTuple
	State any
	// Value is filled when torch.go recognises the call (a tensor, say).
	Value any
}

// pyPersistent is a persistent id: torch stores storage references this way.
type pyPersistent struct{ ID any }

type pickleMark struct{}

// unpickler reads one pickle from r. persistent resolves persistent ids as
// they appear (nil keeps them as pyPersistent).
type unpickler struct {
	r          *bufio.Reader
	stack      []any
	marks      []int
	memo       map[int]any
	persistent func(id any) (any, error)
	reduce     func(fn any, args pyTuple) (any, bool, error)
	// limit bounds any single length read from the stream (the size of
	// the file it comes from), so a corrupt length fails instead of
	// allocating without bound.
	limit int64
}

func newUnpickler(r io.Reader, limit int64) *unpickler {
	br, ok := r.(*bufio.Reader)
	if !ok {
		br = bufio.NewReader(r)
	}
	return &unpickler{r: br, memo: map[int]any{}, limit: limit}
}

var errPickle = errors.New("pickle")

func (u *unpickler) fail(op byte, format string, a ...any) error {
	return fmt.Errorf("%w: opcode 0x%02x: %s", errPickle, op, fmt.Sprintf(format, a...))
}

func (u *unpickler) push(v any) { u.stack = append(u.stack, v) }

func (u *unpickler) pop() (any, error) {
	if len(u.stack) == 0 {
		return nil, fmt.Errorf("%w: stack underflow", errPickle)
	}
	v := u.stack[len(u.stack)-1]
	u.stack = u.stack[:len(u.stack)-1]
	return v, nil
}

func (u *unpickler) top() (any, error) {
	if len(u.stack) == 0 {
		return nil, fmt.Errorf("%w: stack underflow", errPickle)
	}
	return u.stack[len(u.stack)-1], nil
}

// popMark returns the items pushed since the last MARK.
func (u *unpickler) popMark() ([]any, error) {
	if len(u.marks) == 0 {
		return nil, fmt.Errorf("%w: no mark", errPickle)
	}
	m := u.marks[len(u.marks)-1]
	u.marks = u.marks[:len(u.marks)-1]
	if m > len(u.stack) {
		return nil, fmt.Errorf("%w: mark below the stack", errPickle)
	}
	items := append([]any(nil), u.stack[m:]...)
	u.stack = u.stack[:m]
	return items, nil
}

func (u *unpickler) readN(n int) ([]byte, error) {
	if n < 0 || int64(n) > u.limit {
		return nil, fmt.Errorf("%w: length %d exceeds the file", errPickle, n)
	}
	b := make([]byte, n)
	_, err := io.ReadFull(u.r, b)
	return b, err
}

func (u *unpickler) readLine() (string, error) {
	s, err := u.r.ReadString('\n')
	if err != nil {
		return "", err
	}
	return strings.TrimRight(s, "\r\n"), nil
}

func (u *unpickler) uint(n int) (uint64, error) {
	b, err := u.readN(n)
	if err != nil {
		return 0, err
	}
	var v uint64
	for i := n - 1; i >= 0; i-- {
		v = v<<8 | uint64(b[i])
	}
	return v, nil
}

// decodeLong reads a little-endian two's complement integer (LONG1/LONG4).
// Torch's legacy magic number needs 80 bits, so big values stay *big.Int.
func decodeLong(b []byte) any {
	if len(b) == 0 {
		return int64(0)
	}
	if len(b) <= 8 {
		var v uint64
		for i := len(b) - 1; i >= 0; i-- {
			v = v<<8 | uint64(b[i])
		}
		shift := uint(64 - 8*len(b))
		return int64(v<<shift) >> shift
	}
	be := make([]byte, len(b))
	for i := range b {
		be[len(b)-1-i] = b[i]
	}
	x := new(big.Int).SetBytes(be)
	if b[len(b)-1]&0x80 != 0 {
		x.Sub(x, new(big.Int).Lsh(big.NewInt(1), uint(8*len(b))))
	}
	return x
}

// load runs the pickle machine until STOP and returns the result.
func (u *unpickler) load() (any, error) {
	for {
		op, err := u.r.ReadByte()
		if err != nil {
			return nil, fmt.Errorf("%w: truncated: %v", errPickle, err)
		}
		switch op {
		case 0x80: // PROTO
			if _, err := u.r.ReadByte(); err != nil {
				return nil, err
			}
		case 0x95: // FRAME
			if _, err := u.readN(8); err != nil {
				return nil, err
			}
		case '.': // STOP
			return u.pop()
		case '(': // MARK
			u.marks = append(u.marks, len(u.stack))
		case '0': // POP
			if len(u.marks) > 0 && u.marks[len(u.marks)-1] == len(u.stack) {
				u.marks = u.marks[:len(u.marks)-1]
			} else if _, err := u.pop(); err != nil {
				return nil, err
			}
		case '1': // POP_MARK
			if _, err := u.popMark(); err != nil {
				return nil, err
			}
		case '2': // DUP
			v, err := u.top()
			if err != nil {
				return nil, err
			}
			u.push(v)
		case 'N':
			u.push(nil)
		case 0x88:
			u.push(true)
		case 0x89:
			u.push(false)
		case 'I': // INT (text), also encodes bools in protocol 0
			s, err := u.readLine()
			if err != nil {
				return nil, err
			}
			switch s {
			case "01":
				u.push(true)
			case "00":
				u.push(false)
			default:
				v, err := strconv.ParseInt(s, 10, 64)
				if err != nil {
					return nil, u.fail(op, "int %s", snippet.Quote(s))
				}
				u.push(v)
			}
		case 'L': // LONG (text)
			s, err := u.readLine()
			if err != nil {
				return nil, err
			}
			s = strings.TrimSuffix(s, "L")
			x, ok := new(big.Int).SetString(s, 10)
			if !ok {
				return nil, u.fail(op, "long %s", snippet.Quote(s))
			}
			if x.IsInt64() {
				u.push(x.Int64())
			} else {
				u.push(x)
			}
		case 'J': // BININT
			v, err := u.uint(4)
			if err != nil {
				return nil, err
			}
			u.push(int64(int32(uint32(v))))
		case 'K': // BININT1
			v, err := u.uint(1)
			if err != nil {
				return nil, err
			}
			u.push(int64(v))
		case 'M': // BININT2
			v, err := u.uint(2)
			if err != nil {
				return nil, err
			}
			u.push(int64(v))
		case 0x8a: // LONG1
			n, err := u.uint(1)
			if err != nil {
				return nil, err
			}
			b, err := u.readN(int(n))
			if err != nil {
				return nil, err
			}
			u.push(decodeLong(b))
		case 0x8b: // LONG4
			n, err := u.uint(4)
			if err != nil {
				return nil, err
			}
			b, err := u.readN(int(int32(uint32(n))))
			if err != nil {
				return nil, err
			}
			u.push(decodeLong(b))
		case 'F': // FLOAT (text)
			s, err := u.readLine()
			if err != nil {
				return nil, err
			}
			v, err := strconv.ParseFloat(s, 64)
			if err != nil {
				return nil, u.fail(op, "float %s", snippet.Quote(s))
			}
			u.push(v)
		case 'G': // BINFLOAT, big-endian
			b, err := u.readN(8)
			if err != nil {
				return nil, err
			}
			u.push(math.Float64frombits(binary.BigEndian.Uint64(b)))
		case 'S': // STRING (text, quoted repr)
			s, err := u.readLine()
			if err != nil {
				return nil, err
			}
			uq, err := strconv.Unquote(pyQuoteToGo(s))
			if err != nil {
				return nil, u.fail(op, "string %s", snippet.Quote(s))
			}
			u.push(uq)
		case 'V': // UNICODE (raw-unicode-escape line)
			s, err := u.readLine()
			if err != nil {
				return nil, err
			}
			u.push(s)
		case 'T', 'X', 0x8d, 'U', 0x8c, 'B', 'C', 0x8e, 0x96: // sized strings/bytes
			var n uint64
			switch op {
			case 'U', 0x8c, 'C':
				n, err = u.uint(1)
			case 'T', 'X', 'B':
				n, err = u.uint(4)
			default:
				n, err = u.uint(8)
			}
			if err != nil {
				return nil, err
			}
			b, err := u.readN(int(n))
			if err != nil {
				return nil, err
			}
			switch op {
			case 'B', 'C', 0x8e, 0x96:
				u.push(b)
			default:
				// Python 2 str (T/U) is bytes; torch's own keys are ASCII,
				// so treating them as text is what Python 3's
				// encoding='latin1' loading ends up doing for names.
				u.push(string(b))
			}
		case ')':
			u.push(pyTuple{})
		case 't':
			items, err := u.popMark()
			if err != nil {
				return nil, err
			}
			u.push(pyTuple(items))
		case 0x85, 0x86, 0x87: // TUPLE1..3
			n := int(op - 0x84)
			if len(u.stack) < n {
				return nil, u.fail(op, "stack underflow")
			}
			t := append(pyTuple(nil), u.stack[len(u.stack)-n:]...)
			u.stack = u.stack[:len(u.stack)-n]
			u.push(t)
		case ']':
			u.push(&pyList{})
		case 'l':
			items, err := u.popMark()
			if err != nil {
				return nil, err
			}
			u.push(&pyList{Items: items})
		case 'a': // APPEND
			v, err := u.pop()
			if err != nil {
				return nil, err
			}
			if err := u.appendTo(op, []any{v}); err != nil {
				return nil, err
			}
		case 'e': // APPENDS
			items, err := u.popMark()
			if err != nil {
				return nil, err
			}
			if err := u.appendTo(op, items); err != nil {
				return nil, err
			}
		case '}':
			u.push(newDict())
		case 'd':
			items, err := u.popMark()
			if err != nil {
				return nil, err
			}
			d := newDict()
			for i := 0; i+1 < len(items); i += 2 {
				d.set(items[i], items[i+1])
			}
			u.push(d)
		case 's': // SETITEM
			v, err := u.pop()
			if err != nil {
				return nil, err
			}
			k, err := u.pop()
			if err != nil {
				return nil, err
			}
			if err := u.setItems(op, []any{k, v}); err != nil {
				return nil, err
			}
		case 'u': // SETITEMS
			items, err := u.popMark()
			if err != nil {
				return nil, err
			}
			if err := u.setItems(op, items); err != nil {
				return nil, err
			}
		case 0x8f: // EMPTY_SET
			u.push(&pyDict{Values: map[any]any{}})
		case 0x90: // ADDITEMS
			items, err := u.popMark()
			if err != nil {
				return nil, err
			}
			t, err := u.top()
			if err != nil {
				return nil, err
			}
			if d, ok := t.(*pyDict); ok {
				for _, it := range items {
					d.set(it, true)
				}
			}
		case 0x91: // FROZENSET
			items, err := u.popMark()
			if err != nil {
				return nil, err
			}
			d := newDict()
			for _, it := range items {
				d.set(it, true)
			}
			u.push(d)
		case 'p': // PUT
			s, err := u.readLine()
			if err != nil {
				return nil, err
			}
			i, err := strconv.Atoi(s)
			if err != nil {
				return nil, u.fail(op, "memo %s", snippet.Quote(s))
			}
			if err := u.memoPut(i); err != nil {
				return nil, err
			}
		case 'q', 'r': // BINPUT, LONG_BINPUT
			n := 1
			if op == 'r' {
				n = 4
			}
			i, err := u.uint(n)
			if err != nil {
				return nil, err
			}
			if err := u.memoPut(int(i)); err != nil {
				return nil, err
			}
		case 0x94: // MEMOIZE
			if err := u.memoPut(len(u.memo)); err != nil {
				return nil, err
			}
		case 'g': // GET
			s, err := u.readLine()
			if err != nil {
				return nil, err
			}
			i, err := strconv.Atoi(s)
			if err != nil {
				return nil, u.fail(op, "memo %s", snippet.Quote(s))
			}
			if err := u.memoGet(op, i); err != nil {
				return nil, err
			}
		case 'h', 'j': // BINGET, LONG_BINGET
			n := 1
			if op == 'j' {
				n = 4
			}
			i, err := u.uint(n)
			if err != nil {
				return nil, err
			}
			if err := u.memoGet(op, int(i)); err != nil {
				return nil, err
			}
		case 'c': // GLOBAL
			mod, err := u.readLine()
			if err != nil {
				return nil, err
			}
			name, err := u.readLine()
			if err != nil {
				return nil, err
			}
			u.push(pyGlobal{mod, name})
		case 0x93: // STACK_GLOBAL
			name, err := u.pop()
			if err != nil {
				return nil, err
			}
			mod, err := u.pop()
			if err != nil {
				return nil, err
			}
			ms, ok1 := mod.(string)
			ns, ok2 := name.(string)
			if !ok1 || !ok2 {
				return nil, u.fail(op, "non-string global")
			}
			u.push(pyGlobal{ms, ns})
		case 'R', 0x81: // REDUCE: fn(*args); NEWOBJ: cls.__new__(cls, *args), the same to us
			if err := u.callTop(); err != nil {
				return nil, err
			}
		case 0x92: // NEWOBJ_EX: as NEWOBJ, with keyword arguments we ignore
			if _, err := u.pop(); err != nil {
				return nil, err
			}
			if err := u.callTop(); err != nil {
				return nil, err
			}
		case 'b': // BUILD
			state, err := u.pop()
			if err != nil {
				return nil, err
			}
			t, err := u.top()
			if err != nil {
				return nil, err
			}
			switch o := t.(type) {
			case *pyDict:
				o.State = state
			case *pyCall:
				o.State = state
			}
		case 'Q': // BINPERSID
			id, err := u.pop()
			if err != nil {
				return nil, err
			}
			v, err := u.resolvePersistent(id)
			if err != nil {
				return nil, err
			}
			u.push(v)
		case 'P': // PERSID
			s, err := u.readLine()
			if err != nil {
				return nil, err
			}
			v, err := u.resolvePersistent(s)
			if err != nil {
				return nil, err
			}
			u.push(v)
		default:
			return nil, u.fail(op, "unsupported opcode")
		}
	}
}

// callTop pops an argument tuple and a callable, calls it and pushes the
// result (REDUCE, NEWOBJ and NEWOBJ_EX all come down to this).
func (u *unpickler) callTop() error {
	args, err := u.pop()
	if err != nil {
		return err
	}
	fn, err := u.pop()
	if err != nil {
		return err
	}
	t, _ := args.(pyTuple)
	v, err := u.call(fn, t)
	if err != nil {
		return err
	}
	u.push(v)
	return nil
}

func (u *unpickler) call(fn any, args pyTuple) (any, error) {
	if g, ok := fn.(pyGlobal); ok {
		switch g.String() {
		case "collections.OrderedDict", "builtins.dict", "__builtin__.dict":
			d := newDict()
			if len(args) == 1 {
				// Python 3 pickles items as (k, v) tuples; Python 2's
				// OrderedDict.__reduce__ as [k, v] lists.
				if items, ok := args[0].(*pyList); ok {
					for _, it := range items.Items {
						switch kv := it.(type) {
						case pyTuple:
							if len(kv) == 2 {
								d.set(kv[0], kv[1])
							}
						case *pyList:
							if len(kv.Items) == 2 {
								d.set(kv.Items[0], kv.Items[1])
							}
						}
					}
				}
			}
			return d, nil
		}
	}
	if u.reduce != nil {
		v, ok, err := u.reduce(fn, args)
		if err != nil {
			return nil, err
		}
		if ok {
			return v, nil
		}
	}
	return &pyCall{Func: fn, Args: args}, nil
}

func (u *unpickler) resolvePersistent(id any) (any, error) {
	if u.persistent == nil {
		return pyPersistent{id}, nil
	}
	return u.persistent(id)
}

func (u *unpickler) memoPut(i int) error {
	v, err := u.top()
	if err != nil {
		return err
	}
	u.memo[i] = v
	return nil
}

func (u *unpickler) memoGet(op byte, i int) error {
	v, ok := u.memo[i]
	if !ok {
		return u.fail(op, "memo key %d missing", i)
	}
	u.push(v)
	return nil
}

func (u *unpickler) appendTo(op byte, items []any) error {
	if len(u.stack) == 0 {
		return u.fail(op, "stack underflow")
	}
	switch l := u.stack[len(u.stack)-1].(type) {
	case *pyList:
		l.Items = append(l.Items, items...)
	default:
		return u.fail(op, "append to %T", l)
	}
	return nil
}

func (u *unpickler) setItems(op byte, items []any) error {
	t, err := u.top()
	if err != nil {
		return err
	}
	d, ok := t.(*pyDict)
	if !ok {
		return u.fail(op, "setitem on %T", t)
	}
	for i := 0; i+1 < len(items); i += 2 {
		d.set(items[i], items[i+1])
	}
	return nil
}

// pyQuoteToGo converts a Python 2 repr string ('abc' or "abc") into a Go
// quoted string; the escapes torch's names use are common to both.
func pyQuoteToGo(s string) string {
	if len(s) >= 2 && s[0] == '\'' && s[len(s)-1] == '\'' {
		inner := s[1 : len(s)-1]
		inner = strings.ReplaceAll(inner, `\'`, `'`)
		inner = strings.ReplaceAll(inner, `"`, `\"`)
		return `"` + inner + `"`
	}
	return s
}
