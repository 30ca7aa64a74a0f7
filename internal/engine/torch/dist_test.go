package torch_test

import (
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"imet/internal/engine/torch"
)

// freePort is a TCP port nothing listens on right now.
func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// onRanks runs f as each of world ranks of one Gloo group on loopback, one
// goroutine each, and returns their errors.
func onRanks(t *testing.T, world int, f func(g *torch.ProcessGroup) error) []error {
	if !torch.BackendAvailable(torch.Gloo) {
		t.Fatal("the shim has no Gloo: install libgloo-dev and rebuild it (make shim)")
	}
	port := freePort(t)
	errs := make([]error, world)
	var wg sync.WaitGroup
	for r := range world {
		wg.Go(func() {
			g, err := torch.NewProcessGroup(torch.GroupOptions{Backend: torch.Gloo, Host: "127.0.0.1", Port: port,
				HostStore: r == 0, Rank: r, World: world, Timeout: 20 * time.Second, Interface: "lo"})
			if err != nil {
				errs[r] = err
				return
			}
			defer g.Close()
			errs[r] = torch.Catch(func() {
				if err := f(g); err != nil {
					panic(&torch.Error{Op: "test", Msg: err.Error()})
				}
			})
		})
	}
	wg.Wait()
	return errs
}

// The collectives the trainer uses, on two ranks of one process: sums and
// maxima, a broadcast from rank 0, and gradient averaging in several
// buckets with a parameter that got no gradient and values riding along.
func TestProcessGroupCollectives(t *testing.T) {
	var mu sync.Mutex
	got := map[int][][]float32{}
	errs := onRanks(t, 2, func(g *torch.ProcessGroup) error {
		r := float32(g.Rank())
		sum := torch.FromFloat32([]float32{r + 1, 2 * (r + 1), -r}, 3)
		mx := torch.FromFloat32([]float32{r + 1, 5 - r}, 2)
		g.AllReduce(torch.DistSum, sum)
		g.AllReduce(torch.DistMax, mx)
		b := torch.FromFloat32([]float32{10 + r, 20 + r}, 2)
		g.Broadcast(0, b)
		// flat: two float tensors and an int64 one in two messages
		f1, f2 := torch.FromFloat32([]float32{r, r}, 2), torch.FromFloat32([]float32{r + 1}, 1, 1)
		i1 := torch.Full(float64(3+r), torch.Int64, torch.CPU, 2)
		g.BroadcastFlat(1, f1, i1, f2)
		s1, s2 := torch.FromFloat32([]float32{r, 1}, 2), torch.FromFloat32([]float32{2 * r}, 1)
		g.AllReduceFlat(torch.DistSum, s1, s2)
		// three parameters of 3, 2 and 1 elements; buckets of 8 bytes
		// hold at most two floats, so each travels alone or nearly.
		p1 := torch.FromFloat32([]float32{1, 2, 3}, 3).SetRequiresGrad(true)
		p2 := torch.FromFloat32([]float32{1, 1}, 2).SetRequiresGrad(true)
		p3 := torch.FromFloat32([]float32{7}, 1).SetRequiresGrad(true) // no gradient
		c1 := torch.FromFloat32([]float32{r + 1, 2*r + 1, 3}, 3)
		c2 := torch.FromFloat32([]float32{4 * r, -1}, 2)
		p1.Mul(c1).Sum().Add(p2.Mul(c2).Sum()).Backward()
		extra := []float64{float64(r) + 0.5, 1}
		g.AverageGradients([]*torch.Tensor{p1, p2, p3}, 8, extra)
		mu.Lock()
		got[g.Rank()] = [][]float32{sum.Float32s(), mx.Float32s(), b.Float32s(), p1.Grad().Float32s(), p2.Grad().Float32s(),
			p3.Grad().Float32s(), {float32(extra[0]), float32(extra[1])},
			append(f1.Float32s(), f2.Float32s()...), i1.To(torch.Float32).Float32s(), append(s1.Float32s(), s2.Float32s()...)}
		mu.Unlock()
		return nil
	})
	for r, err := range errs {
		if err != nil {
			t.Fatalf("rank %d: %v", r, err)
		}
	}
	want := [][]float32{{3, 6, -1}, {2, 5}, {10, 20}, {1.5, 2, 3}, {2, -1}, {0}, {2, 2}, {1, 1, 2}, {4, 4}, {1, 2, 2}}
	names := []string{"sum", "max", "broadcast", "grad p1", "grad p2", "grad p3 (none)", "extra", "flat broadcast (floats)",
		"flat broadcast (int64)", "flat sum"}
	for r := range 2 {
		for i, w := range want {
			if g := got[r][i]; !equal(g, w) {
				t.Errorf("rank %d %s: got %v, want %v", r, names[i], g, w)
			}
		}
	}
}

// A rank that leaves makes its peer's next collective fail with an error
// instead of waiting forever.
func TestProcessGroupPeerGoneFails(t *testing.T) {
	errs := onRanks(t, 2, func(g *torch.ProcessGroup) error {
		x := torch.FromFloat32([]float32{1}, 1)
		g.AllReduce(torch.DistSum, x)
		if g.Rank() == 1 {
			return nil // leaves: the deferred Close drops its connections
		}
		time.Sleep(200 * time.Millisecond)
		g.AllReduce(torch.DistSum, x)
		return nil
	})
	if errs[1] != nil {
		t.Fatalf("rank 1: %v", errs[1])
	}
	if errs[0] == nil || !strings.Contains(errs[0].Error(), "allreduce") {
		t.Fatalf("rank 0's collective after its peer left: %v, want an allreduce error", errs[0])
	}
	t.Logf("rank 0: %v", errs[0])
}
