// Package metrics samples CPU and memory of each instance's whole process tree. One pass per
// tick reads the process table once; gopsutil handles are kept between ticks so CPU is the
// change since the previous sample, not a lifetime average.
package metrics

import (
	"sync"
	"time"

	"github.com/shirou/gopsutil/v4/process"

	"github.com/pmdaemon/pmdaemon/host/procfs"
)

// Sample is one instance's usage.
type Sample struct {
	CPU    float64 // percent of one core, summed over the tree
	Memory uint64  // RSS bytes, summed over the tree
}

type handle struct {
	p        *process.Process
	lastCPU  float64 // user+system seconds at the previous sample
	lastWall time.Time
}

// Sampler keeps per-process handles between ticks. Safe for concurrent use.
type Sampler struct {
	mu      sync.Mutex
	handles map[int32]*handle
	last    map[int]Sample // by instance id
}

func NewSampler() *Sampler {
	return &Sampler{handles: map[int32]*handle{}, last: map[int]Sample{}}
}

// Get returns the latest sample of an instance.
func (s *Sampler) Get(id int) Sample {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last[id]
}

// Sample measures the trees rooted at roots (instance id -> pid).
func (s *Sampler) Sample(roots map[int]int) {
	children := childMap()
	now := time.Now()
	out := make(map[int]Sample, len(roots))
	seen := map[int32]bool{}
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, root := range roots {
		var sm Sample
		stack := []int32{int32(root)}
		for len(stack) > 0 {
			pid := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if seen[pid] {
				continue
			}
			seen[pid] = true
			stack = append(stack, children[pid]...)
			h := s.handles[pid]
			if h == nil {
				p, err := process.NewProcess(pid)
				if err != nil {
					continue
				}
				h = &handle{p: p}
				s.handles[pid] = h
			}
			if mi, err := h.p.MemoryInfo(); err == nil {
				sm.Memory += mi.RSS
			}
			if t, err := h.p.Times(); err == nil {
				total := t.User + t.System
				if !h.lastWall.IsZero() {
					if wall := now.Sub(h.lastWall).Seconds(); wall > 0 {
						sm.CPU += max(0, (total-h.lastCPU)/wall*100)
					}
				}
				h.lastCPU, h.lastWall = total, now
			}
		}
		out[id] = sm
	}
	for pid := range s.handles {
		if !seen[pid] {
			delete(s.handles, pid)
		}
	}
	s.last = out
}

// childMap reads the parent of every process once.
func childMap() map[int32][]int32 {
	m := map[int32][]int32{}
	all, _ := procfs.All()
	for _, st := range all {
		m[int32(st.Ppid)] = append(m[int32(st.Ppid)], int32(st.Pid))
	}
	return m
}
