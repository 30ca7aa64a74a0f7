package weights

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"imet/internal/base/snippet"
)

// TFJSModel is a TensorFlow.js layers model: its topology (the Keras model
// config, as generic JSON values) and its weights under their Keras names
// (e.g. "block_1_expand/kernel"), in the shapes and layouts TensorFlow uses
// (HWIO kernels, [in, out] dense kernels). Use KerasMobileNetV2ToTorchvision
// to rename and transpose them for the zoo.
type TFJSModel struct {
	Topology map[string]any
	Tensors  Set
}

// tfjsWeightSpec is one entry of model.json's weightsManifest.
type tfjsWeightSpec struct {
	Name         string  `json:"name"`
	Shape        []int64 `json:"shape"`
	DType        string  `json:"dtype"`
	Quantization *struct {
		Min   float64 `json:"min"`
		Scale float64 `json:"scale"`
		DType string  `json:"dtype"`
	} `json:"quantization"`
}

type tfjsManifestGroup struct {
	Paths   []string         `json:"paths"`
	Weights []tfjsWeightSpec `json:"weights"`
}

type tfjsModelJSON struct {
	ModelTopology   map[string]any      `json:"modelTopology"`
	WeightsManifest []tfjsManifestGroup `json:"weightsManifest"`
}

// findTFJSModel returns the model file inside dir.
func findTFJSModel(dir string) (string, error) {
	for _, name := range []string{"model.json", "model.min.js"} {
		p := filepath.Join(dir, name)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("no model.json or model.min.js in %s", dir)
}

// ReadTFJS reads a TensorFlow.js layers model. path is a model.json (with
// binary shard files beside it, as tfjs-converter writes them), a
// model.min.js as nsfwjs ships them (the same JSON as a JavaScript object
// literal inside a browserify bundle, each shard a base64 string in its own
// <shard>.min.js bundle), or a directory holding either.
//
// Quantised weights are dequantised exactly as tfjs does it:
// value = min + scale*q for uint8/uint16 codes, computed in float64 and
// rounded to float32; float16-quantised weights are widened.
func ReadTFJS(path string) (*TFJSModel, error) {
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		p, err := findTFJSModel(path)
		if err != nil {
			return nil, err
		}
		path = p
	}
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var mj tfjsModelJSON
	bundled := !bytes.HasPrefix(bytes.TrimSpace(src), []byte("{"))
	if bundled {
		v, err := jsExportsLiteral(src)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		// Round-trip through JSON to reuse the struct decoding.
		b, err := json.Marshal(v)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		src = b
	}
	if err := json.Unmarshal(src, &mj); err != nil {
		return nil, fmt.Errorf("%s: not a tfjs model.json: %w", path, err)
	}
	if len(mj.WeightsManifest) == 0 {
		return nil, fmt.Errorf("%s: no weightsManifest", path)
	}
	dir := filepath.Dir(path)
	set := Set{}
	for _, g := range mj.WeightsManifest {
		var data []byte
		for _, p := range g.Paths {
			b, err := readTFJSShard(dir, p, bundled)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", path, err)
			}
			data = append(data, b...)
		}
		off := 0
		for _, w := range g.Weights {
			cnt, ok := checkedNumel(w.Shape)
			if !ok {
				return nil, fmt.Errorf("%s: %s: bad shape %v", path, w.Name, w.Shape)
			}
			n := int(cnt)
			var vals []float32
			var size int
			if q := w.Quantization; q != nil {
				switch q.DType {
				case "uint8":
					size = n
				case "uint16", "float16":
					size = 2 * n
				default:
					return nil, fmt.Errorf("%s: %s: unsupported quantisation %s", path, snippet.Quote(w.Name), snippet.Quote(q.DType))
				}
				if off+size > len(data) {
					return nil, fmt.Errorf("%s: %s: shards end at byte %d, weight needs %d", path, w.Name, len(data), off+size)
				}
				b := data[off : off+size]
				vals = make([]float32, n)
				for i := range vals {
					switch q.DType {
					case "uint8":
						vals[i] = float32(q.Min + q.Scale*float64(b[i]))
					case "uint16":
						vals[i] = float32(q.Min + q.Scale*float64(binary.LittleEndian.Uint16(b[2*i:])))
					default:
						vals[i] = halfToFloat(binary.LittleEndian.Uint16(b[2*i:]))
					}
				}
			} else {
				var dt DType
				switch w.DType {
				case "float32":
					dt = Float32
				case "int32":
					dt = Int32
				case "bool":
					dt = Bool
				default:
					return nil, fmt.Errorf("%s: %s: unsupported dtype %s", path, snippet.Quote(w.Name), snippet.Quote(w.DType))
				}
				size = n * elemSize(dt)
				if off+size > len(data) {
					return nil, fmt.Errorf("%s: %s: shards end at byte %d, weight needs %d", path, w.Name, len(data), off+size)
				}
				vals, err = decode(data[off:off+size], dt, binary.LittleEndian)
				if err != nil {
					return nil, fmt.Errorf("%s: %s: %w", path, w.Name, err)
				}
			}
			off += size
			dt := DType(w.DType)
			if w.Quantization != nil {
				dt = DType(w.Quantization.DType) // what the file stores
			}
			set[w.Name] = &Tensor{Shape: w.Shape, DType: dt, Data: vals}
		}
		if off != len(data) {
			return nil, fmt.Errorf("%s: manifest describes %d bytes, shards hold %d", path, off, len(data))
		}
	}
	return &TFJSModel{Topology: mj.ModelTopology, Tensors: set}, nil
}

func readTFJSShard(dir, name string, bundled bool) ([]byte, error) {
	// A shard path is relative to the model folder and must stay in it: a
	// downloaded model.json naming "../../secret.bin" must not read what
	// lies outside.
	if !filepath.IsLocal(filepath.FromSlash(name)) || strings.Contains(name, "\\") {
		return nil, fmt.Errorf("weight shard path %s leaves the model folder %s", snippet.Quote(name), dir)
	}
	candidates := []string{filepath.Join(dir, name), filepath.Join(dir, name+".min.js")}
	if bundled {
		candidates[0], candidates[1] = candidates[1], candidates[0]
	}
	for _, p := range candidates {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		if strings.HasSuffix(p, ".js") {
			v, err := jsExportsLiteral(b)
			if err != nil {
				return nil, fmt.Errorf("shard %s: %w", p, err)
			}
			s, ok := v.(string)
			if !ok {
				return nil, fmt.Errorf("shard %s: exports a %T, want a base64 string", p, v)
			}
			return base64.StdEncoding.DecodeString(s)
		}
		return b, nil
	}
	return nil, fmt.Errorf("weight shard %s not found in %s", snippet.Quote(name), dir)
}

// jsExportsLiteral finds the value assigned to module.exports in a
// browserify bundle ("a.exports={...}" or "a.exports=\"...\"") and parses
// it as a JavaScript literal. Nothing is executed.
func jsExportsLiteral(src []byte) (any, error) {
	i := bytes.Index(src, []byte(".exports={"))
	j := bytes.Index(src, []byte(".exports=\""))
	switch {
	case i >= 0 && (j < 0 || i < j):
	case j >= 0:
		i = j
	default:
		return nil, errors.New("no module.exports literal in the bundle")
	}
	p := &jsParser{src: src, pos: i + len(".exports=")}
	return p.value()
}

// jsParser reads the JavaScript literal subset minifiers emit for JSON
// data: objects with bare or quoted keys, arrays, strings in either quote,
// numbers, !0/!1 for true/false, null and void 0.
type jsParser struct {
	src []byte
	pos int
}

func (p *jsParser) errorf(format string, a ...any) error {
	return fmt.Errorf("javascript literal at byte %d: %s", p.pos, fmt.Sprintf(format, a...))
}

func (p *jsParser) skip() {
	for p.pos < len(p.src) && strings.IndexByte(" \t\r\n", p.src[p.pos]) >= 0 {
		p.pos++
	}
}

func (p *jsParser) value() (any, error) {
	p.skip()
	if p.pos >= len(p.src) {
		return nil, p.errorf("unexpected end")
	}
	c := p.src[p.pos]
	switch {
	case c == '{':
		return p.object()
	case c == '[':
		return p.array()
	case c == '"' || c == '\'':
		return p.str()
	case c == '!':
		p.pos++
		v, err := p.value()
		if err != nil {
			return nil, err
		}
		return !truthy(v), nil
	case c == '-' || c == '.' || (c >= '0' && c <= '9'):
		return p.number()
	}
	id := p.ident()
	switch id {
	case "null":
		return nil, nil
	case "true":
		return true, nil
	case "false":
		return false, nil
	case "void":
		if _, err := p.value(); err != nil {
			return nil, err
		}
		return nil, nil
	case "Infinity":
		return math.Inf(1), nil
	}
	return nil, p.errorf("unsupported token %s", snippet.Quote(id))
}

func truthy(v any) bool {
	switch x := v.(type) {
	case nil:
		return false
	case bool:
		return x
	case float64:
		return x != 0 && !math.IsNaN(x)
	case string:
		return x != ""
	}
	return true
}

func (p *jsParser) ident() string {
	start := p.pos
	for p.pos < len(p.src) {
		c := p.src[p.pos]
		if c == '_' || c == '$' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') {
			p.pos++
			continue
		}
		break
	}
	return string(p.src[start:p.pos])
}

func (p *jsParser) number() (any, error) {
	start := p.pos
	for p.pos < len(p.src) && strings.IndexByte("+-.0123456789eE", p.src[p.pos]) >= 0 {
		if (p.src[p.pos] == '+' || p.src[p.pos] == '-') && p.pos > start && p.src[p.pos-1] != 'e' && p.src[p.pos-1] != 'E' {
			break
		}
		p.pos++
	}
	v, err := strconv.ParseFloat(string(p.src[start:p.pos]), 64)
	if err != nil {
		return nil, p.errorf("number %s", snippet.Quote(string(p.src[start:p.pos])))
	}
	return v, nil
}

func (p *jsParser) str() (string, error) {
	q := p.src[p.pos]
	p.pos++
	var sb strings.Builder
	for p.pos < len(p.src) {
		c := p.src[p.pos]
		p.pos++
		switch {
		case c == q:
			return sb.String(), nil
		case c == '\\':
			if p.pos >= len(p.src) {
				return "", p.errorf("unterminated escape")
			}
			e := p.src[p.pos]
			p.pos++
			switch e {
			case 'n':
				sb.WriteByte('\n')
			case 't':
				sb.WriteByte('\t')
			case 'r':
				sb.WriteByte('\r')
			case 'b':
				sb.WriteByte('\b')
			case 'f':
				sb.WriteByte('\f')
			case 'u':
				if p.pos+4 > len(p.src) {
					return "", p.errorf("short \\u escape")
				}
				r, err := strconv.ParseUint(string(p.src[p.pos:p.pos+4]), 16, 32)
				if err != nil {
					return "", p.errorf("bad \\u escape")
				}
				p.pos += 4
				sb.WriteRune(rune(r))
			case 'x':
				if p.pos+2 > len(p.src) {
					return "", p.errorf("short \\x escape")
				}
				r, err := strconv.ParseUint(string(p.src[p.pos:p.pos+2]), 16, 32)
				if err != nil {
					return "", p.errorf("bad \\x escape")
				}
				p.pos += 2
				sb.WriteRune(rune(r))
			default:
				sb.WriteByte(e)
			}
		default:
			sb.WriteByte(c)
		}
	}
	return "", p.errorf("unterminated string")
}

func (p *jsParser) array() ([]any, error) {
	p.pos++ // [
	out := []any{}
	for {
		p.skip()
		if p.pos < len(p.src) && p.src[p.pos] == ']' {
			p.pos++
			return out, nil
		}
		v, err := p.value()
		if err != nil {
			return nil, err
		}
		out = append(out, v)
		p.skip()
		if p.pos < len(p.src) && p.src[p.pos] == ',' {
			p.pos++
			continue
		}
		if p.pos < len(p.src) && p.src[p.pos] == ']' {
			p.pos++
			return out, nil
		}
		return nil, p.errorf("expected , or ]")
	}
}

func (p *jsParser) object() (map[string]any, error) {
	p.pos++ // {
	out := map[string]any{}
	for {
		p.skip()
		if p.pos >= len(p.src) {
			return nil, p.errorf("unterminated object")
		}
		if p.src[p.pos] == '}' {
			p.pos++
			return out, nil
		}
		var key string
		switch c := p.src[p.pos]; {
		case c == '"' || c == '\'':
			k, err := p.str()
			if err != nil {
				return nil, err
			}
			key = k
		case c >= '0' && c <= '9':
			v, err := p.number()
			if err != nil {
				return nil, err
			}
			key = strconv.FormatFloat(v.(float64), 'g', -1, 64)
		default:
			key = p.ident()
			if key == "" {
				return nil, p.errorf("expected a key")
			}
		}
		p.skip()
		if p.pos >= len(p.src) || p.src[p.pos] != ':' {
			return nil, p.errorf("expected : after key %s", snippet.Quote(key))
		}
		p.pos++
		v, err := p.value()
		if err != nil {
			return nil, err
		}
		out[key] = v
		p.skip()
		if p.pos < len(p.src) && p.src[p.pos] == ',' {
			p.pos++
			continue
		}
		if p.pos < len(p.src) && p.src[p.pos] == '}' {
			p.pos++
			return out, nil
		}
		return nil, p.errorf("expected , or }")
	}
}
