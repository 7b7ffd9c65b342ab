package metrics

import (
	"os/exec"
	"strconv"
	"testing"
	"time"
)

// A tree whose child burns a core shows CPU near 100% of one core on the second sample (the
// first has no earlier sample to compare with) and the memory of both processes.
func TestSampleTree(t *testing.T) {
	cmd := exec.Command("bash", "-c", "bash -c 'while :; do :; done' & wait")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		exec.Command("pkill", "-KILL", "-P", strconv.Itoa(cmd.Process.Pid)).Run()
		cmd.Process.Kill()
		cmd.Wait()
	}()
	s := NewSampler()
	roots := map[int]int{7: cmd.Process.Pid}
	deadline := time.Now().Add(20 * time.Second)
	var got Sample
	for time.Now().Before(deadline) {
		s.Sample(roots, nil, true)
		got = s.Get(7)
		if got.CPU > 30 && got.Memory > 0 {
			break
		}
		time.Sleep(300 * time.Millisecond) // the sampling interval under test
	}
	if got.CPU <= 30 || got.Memory == 0 {
		t.Fatalf("sample of a busy tree: %+v", got)
	}
	if got.CPUTime <= 0 {
		t.Errorf("a busy tree has used no CPU time: %+v", got)
	}
	if got.CPU > 250 {
		t.Errorf("cpu %.1f%% is more than the tree can use on this machine's share", got.CPU)
	}
	if s.Get(99) != (Sample{}) {
		t.Error("an unknown instance has a sample")
	}
}

// BenchmarkSample100 measures 100 real processes (each a root with no children), as a list
// with 100 instances does.
func BenchmarkSample100(b *testing.B) {
	roots := map[int]int{}
	var cmds []*exec.Cmd
	for i := 0; i < 100; i++ {
		cmd := exec.Command("sleep", "1000")
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		cmds = append(cmds, cmd)
		roots[i] = cmd.Process.Pid
	}
	defer func() {
		for _, c := range cmds {
			c.Process.Kill()
			c.Wait()
		}
	}()
	s := NewSampler()
	for b.Loop() {
		s.Sample(roots, nil, true)
	}
	if s.Get(0).Memory == 0 {
		b.Fatal("no memory measured")
	}
}
