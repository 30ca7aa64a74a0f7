package dist

import (
	"strings"
	"testing"
	"time"
)

func envOf(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

// torchrun's variables, read as torch.distributed reads them; a bad or
// missing one is an error naming it.
func TestFromEnv(t *testing.T) {
	e, ok, err := FromEnv(envOf(nil))
	if err != nil || ok {
		t.Fatalf("no WORLD_SIZE: %+v %v %v, want a plain single-process run", e, ok, err)
	}
	e, ok, err = FromEnv(envOf(map[string]string{"WORLD_SIZE": "4", "RANK": "3", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2",
		"MASTER_ADDR": "node0", "MASTER_PORT": "29500", "TORCHELASTIC_USE_AGENT_STORE": "True", "TORCHELASTIC_RESTART_COUNT": "2",
		"GLOO_SOCKET_IFNAME": "eth0", "IMET_DIST_TIMEOUT": "90s"}))
	want := Env{Rank: 3, World: 4, LocalRank: 1, LocalWorld: 2, Addr: "node0", Port: 29500, AgentStore: true, Restart: 2,
		Interface: "eth0", Timeout: 90 * time.Second}
	if err != nil || !ok || e != want {
		t.Fatalf("got %+v %v %v, want %+v", e, ok, err, want)
	}
	if e, _, _ := FromEnv(envOf(map[string]string{"WORLD_SIZE": "2", "RANK": "0", "MASTER_ADDR": "h", "MASTER_PORT": "1"})); e.LocalWorld != 2 {
		t.Errorf("LOCAL_WORLD_SIZE unset: %d, want the world (one machine)", e.LocalWorld)
	}
	if e, ok, err := FromEnv(envOf(map[string]string{"WORLD_SIZE": "1", "RANK": "0"})); err != nil || !ok || e.World != 1 {
		t.Errorf("a world of one needs no store: %+v %v %v", e, ok, err)
	}
	for _, c := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"WORLD_SIZE": "2"}, "RANK"},
		{map[string]string{"WORLD_SIZE": "two", "RANK": "0"}, `WORLD_SIZE="two"`},
		{map[string]string{"WORLD_SIZE": "2", "RANK": "2", "MASTER_ADDR": "h", "MASTER_PORT": "1"}, "RANK=2 is not below WORLD_SIZE=2"},
		{map[string]string{"WORLD_SIZE": "2", "RANK": "1"}, "MASTER_ADDR"},
		{map[string]string{"WORLD_SIZE": "2", "RANK": "1", "MASTER_ADDR": "h"}, "MASTER_PORT"},
		{map[string]string{"WORLD_SIZE": "2", "RANK": "1", "MASTER_ADDR": "h", "MASTER_PORT": "70000"}, "MASTER_PORT=70000"},
		{map[string]string{"WORLD_SIZE": "2", "RANK": "1", "MASTER_ADDR": "h", "MASTER_PORT": "1", "IMET_DIST_TIMEOUT": "soon"}, "IMET_DIST_TIMEOUT"},
		{map[string]string{"WORLD_SIZE": "2", "RANK": "-1"}, `RANK="-1"`},
	} {
		_, ok, err := FromEnv(envOf(c.env))
		if err == nil || !ok || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: error %v, want one naming %q", c.env, err, c.want)
		}
	}
}

func TestThreadsShareTheCores(t *testing.T) {
	if n := (Env{LocalWorld: 1 << 20}).Threads(); n != 1 {
		t.Errorf("more ranks than cores: %d threads, want 1", n)
	}
}
