package models

// Activation is the memory an architecture's forward pass takes beyond its
// weights, per sample and per input pixel, in bytes: Eval with autograd
// off (validation, prediction), Train for a forward and backward pass. It
// is measured, not derived (TestActivationTable: the rise of the resident
// peak of a fresh process between batches of 2 and 6 at 224x224, CPU,
// fp32), because what libtorch keeps alive at once depends on its kernels
// and allocator; it serves to refuse settings that cannot fit before the
// first batch is allocated, not to plan memory to the byte.
type Activation struct {
	Eval, Train float64
}

// ActivationBytes estimates the activation memory of one forward pass of
// arch over batch images of height x width (train: with the backward
// pass). ok is false for an architecture the table does not hold.
func ActivationBytes(arch string, train bool, batch, height, width int) (bytes float64, ok bool) {
	a, ok := activationTable[arch]
	if !ok {
		return 0, false
	}
	per := a.Eval
	if train {
		per = a.Train
	}
	return per * float64(batch) * float64(height) * float64(width), true
}
