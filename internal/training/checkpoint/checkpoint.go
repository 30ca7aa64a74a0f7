// Package checkpoint saves and restores the complete state of a training
// run — weights, optimizer moments, EMA weights, loss scale, schedule
// state, position in the recipe and in the data order, and every random
// generator — so that a run killed at any moment resumes as if it had
// never stopped. Tensors are kept as host bytes, whatever device trained
// them, so a run may resume on another device.
//
// A checkpoint is one file, written through internal/base/atomicfile: a kill -9
// during a save leaves the previous checkpoint whole. The format is a magic
// line, a JSON header (the State and an index of tensors) and the raw tensor
// bytes, followed by a SHA-256 of everything before it, so a truncated or
// corrupted file is refused rather than half-loaded. Tensors are stored as
// raw bytes with a dtype and shape, which keeps this package independent of
// the engine: the trainer converts to and from engine tensors.
package checkpoint

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"strings"

	"imet/internal/base/atomicfile"
	"imet/internal/training/schedule"
)

const magic = "IMETCKPT1\n"

// State is everything about a run's position that is not a tensor.
type State struct {
	// Fingerprint is trainconfig.Run.Fingerprint of the run that wrote the
	// checkpoint; Compatible compares it with the resuming run's.
	Fingerprint []string `json:"fingerprint"`
	ConfigHash  string   `json:"config_hash"`
	Fold        int      `json:"fold"`

	Stage      int   `json:"stage"`       // index of the current stage
	StageStep  int   `json:"stage_step"`  // optimizer steps done in the stage
	Epoch      int   `json:"epoch"`       // epoch within the stage
	Batch      int   `json:"batch"`       // next batch index within the epoch
	GlobalStep int64 `json:"global_step"` // optimizer steps since the run began
	Samples    int64 `json:"samples"`     // images seen since the run began
	Done       bool  `json:"done"`        // the last stage is complete
	// EpochLossSum and EpochLossSteps are the running sum of the current
	// epoch's step losses and their count, so that a session resumed
	// mid-epoch reports the whole epoch's mean train loss. Checkpoints
	// written before they existed read as zero: the mean then starts at
	// the resume.
	EpochLossSum   float64 `json:"epoch_loss_sum,omitempty"`
	EpochLossSteps int     `json:"epoch_loss_steps,omitempty"`

	Schedule schedule.State `json:"schedule"`
	// RNG holds each random generator's serialised state by name (Go PCG
	// states, libtorch generator state).
	RNG map[string][]byte `json:"rng"`

	BestF2    float64 `json:"best_f2"`   // best validation F2 so far (-1: none)
	LastF2    float64 `json:"last_f2"`   // F2 of the latest validation (-1: none)
	Threshold float64 `json:"threshold"` // global threshold of the latest validation
	ElapsedS  float64 `json:"elapsed_s"` // training wall time over all sessions
	Sessions  int     `json:"sessions"`  // sessions that contributed
	// World is the number of data-parallel processes of the session that
	// wrote the checkpoint (0, in older ones: one).
	World int `json:"world,omitempty"`
	// LossScale is the fp16 loss scaler's state; nil for runs without one.
	LossScale *LossScale                 `json:"loss_scale,omitempty"`
	Extra     map[string]json.RawMessage `json:"extra,omitempty"`
}

// LossScale is a dynamic loss scaler's state, as PyTorch's GradScaler
// state_dict keeps it: the scale and the number of consecutive steps
// without inf or NaN gradients.
type LossScale struct {
	Scale         float64 `json:"scale"`
	GrowthTracker int     `json:"growth_tracker"`
}

// Tensor is one named array in raw little-endian bytes.
type Tensor struct {
	DType string  `json:"dtype"` // "float32", "int64", "float64", "uint8", ...
	Shape []int64 `json:"shape"`
	Data  []byte  `json:"-"`
}

// Float32 wraps a float32 slice as a Tensor.
func Float32(shape []int64, v []float32) Tensor {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return Tensor{DType: "float32", Shape: shape, Data: b}
}

// Checkpoint is a State plus named tensors. By convention names are
// prefixed: "model/…" weights and buffers, "optim/…" optimizer state,
// "ema/…" averaged weights.
type Checkpoint struct {
	State   State
	Tensors map[string]Tensor
}

type header struct {
	State   State         `json:"state"`
	Tensors []tensorEntry `json:"tensors"`
}

type tensorEntry struct {
	Name string `json:"name"`
	Tensor
	Offset int64 `json:"offset"`
	Size   int64 `json:"size"`
}

// Write stores c at path atomically.
func Write(path string, c *Checkpoint) error {
	names := make([]string, 0, len(c.Tensors))
	for n := range c.Tensors {
		names = append(names, n)
	}
	sort.Strings(names)
	h := header{State: c.State}
	var off int64
	for _, n := range names {
		t := c.Tensors[n]
		h.Tensors = append(h.Tensors, tensorEntry{Name: n, Tensor: t, Offset: off, Size: int64(len(t.Data))})
		off += int64(len(t.Data))
	}
	hj, err := json.Marshal(h)
	if err != nil {
		return fmt.Errorf("checkpoint %s: %w", path, err)
	}
	return atomicfile.Write(path, 0o644, func(w io.Writer) error {
		sum := sha256.New()
		mw := io.MultiWriter(w, sum)
		var n [8]byte
		binary.LittleEndian.PutUint64(n[:], uint64(len(hj)))
		for _, part := range [][]byte{[]byte(magic), n[:], hj} {
			if _, err := mw.Write(part); err != nil {
				return err
			}
		}
		for _, name := range names {
			if _, err := mw.Write(c.Tensors[name].Data); err != nil {
				return err
			}
		}
		_, err := w.Write(sum.Sum(nil))
		return err
	})
}

// Read loads and verifies the checkpoint at path.
func Read(path string) (*Checkpoint, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	return Decode(path, data)
}

// Decode verifies and decodes a checkpoint file's bytes (read elsewhere:
// sent by the rank that owns the run directory); path names it in errors.
// The tensors' Data share data.
func Decode(path string, data []byte) (*Checkpoint, error) {
	bad := func(why string) error { return fmt.Errorf("checkpoint %s: %s", path, why) }
	if len(data) < len(magic)+8+sha256.Size || string(data[:len(magic)]) != magic {
		return nil, bad("not an imet checkpoint (or truncated)")
	}
	body, sum := data[:len(data)-sha256.Size], data[len(data)-sha256.Size:]
	if got := sha256.Sum256(body); !bytes.Equal(got[:], sum) {
		return nil, bad("checksum mismatch: the file is truncated or corrupted")
	}
	hl := binary.LittleEndian.Uint64(body[len(magic):])
	start := uint64(len(magic) + 8)
	if hl > uint64(len(body))-start {
		return nil, bad("header length out of range")
	}
	var h header
	if err := json.Unmarshal(body[start:start+hl], &h); err != nil {
		return nil, bad("header: " + err.Error())
	}
	blob := body[start+hl:]
	c := &Checkpoint{State: h.State, Tensors: make(map[string]Tensor, len(h.Tensors))}
	for _, e := range h.Tensors {
		// Offset+Size could overflow; compare against what is left.
		if e.Offset < 0 || e.Size < 0 || e.Offset > int64(len(blob)) || e.Size > int64(len(blob))-e.Offset {
			return nil, bad("tensor " + e.Name + " out of range")
		}
		t := e.Tensor
		t.Data = blob[e.Offset : e.Offset+e.Size]
		c.Tensors[e.Name] = t
	}
	return c, nil
}

// ErrIncompatible is wrapped by Compatible's error.
var ErrIncompatible = errors.New("checkpoint is from an incompatible configuration")

// Compatible refuses to resume from a checkpoint whose configuration
// differs in anything that shapes the computation, listing every difference
// (as computed by diff, normally trainconfig.Diff).
func Compatible(path string, st *State, fingerprint []string, diff func(was, now []string) []string) error {
	d := diff(st.Fingerprint, fingerprint)
	if len(d) == 0 {
		return nil
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %v; these settings differ:", path, ErrIncompatible)
	for _, l := range d {
		b.WriteString("\n  " + l)
	}
	b.WriteString("\nrestore them, or start a new run in another directory")
	return fmt.Errorf("%w", &incompatible{msg: b.String()})
}

type incompatible struct{ msg string }

func (e *incompatible) Error() string { return e.msg }
func (e *incompatible) Unwrap() error { return ErrIncompatible }

// Floats32 decodes a float32 Tensor.
func (t Tensor) Floats32() ([]float32, error) {
	if t.DType != "float32" || len(t.Data)%4 != 0 {
		return nil, fmt.Errorf("checkpoint: tensor is %s, not float32", t.DType)
	}
	v := make([]float32, len(t.Data)/4)
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32(t.Data[4*i:]))
	}
	return v, nil
}
