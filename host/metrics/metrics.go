// Package metrics samples CPU and memory of each instance: its cgroup where it has one (every
// process it made, setsid children included), else its whole process tree. A tree is found
// from its root through the kernel's children lists, so a sample reads only the apps' own
// processes, never the whole process table; gopsutil handles are kept between samples so CPU
// is the change since the previous sample, not a lifetime average.
package metrics

import (
	"runtime"
	"sync"
	"time"

	"github.com/shirou/gopsutil/v4/process"

	"github.com/pmdaemon/pmdaemon/host/cgroup"
	"github.com/pmdaemon/pmdaemon/host/procfs"
)

// Sample is one instance's usage.
type Sample struct {
	CPU    float64 // percent of one core, summed over the tree
	Memory uint64  // RSS bytes, summed over the tree
	// CPUTime is the CPU time (user and system) used so far: the cgroup's whole usage, or the
	// sum over the processes of the tree now (a child that exited takes its share with it).
	CPUTime time.Duration
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
	groups  map[int]groupMark
}

// groupMark is a cgroup's CPU time at the previous sample.
type groupMark struct {
	path string
	cpu  time.Duration
	wall time.Time
}

func NewSampler() *Sampler {
	// Each CPU-times read would otherwise read /proc/stat again for the boot time.
	process.EnableBootTimeCache(true)
	return &Sampler{handles: map[int32]*handle{}, last: map[int]Sample{}, groups: map[int]groupMark{}}
}

// Get returns the latest sample of an instance.
func (s *Sampler) Get(id int) Sample {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last[id]
}

// Sample measures the trees rooted at roots (instance id -> pid), or for the instances in
// cgroups (id -> cgroup directory) their cgroups. With full, roots are every running instance
// and what is not among them is forgotten; otherwise only the given instances are updated.
func (s *Sampler) Sample(roots map[int]int, cgroups map[int]string, full bool) {
	now := time.Now()
	out := make(map[int]Sample, len(roots))
	seen := map[int32]bool{}
	usage := readGroups(roots, cgroups)
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, root := range roots {
		if p := cgroups[id]; p != "" {
			out[id] = s.sampleGroup(id, p, usage[id], now)
			continue
		}
		var sm Sample
		stack := []int32{int32(root)}
		for len(stack) > 0 {
			pid := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if seen[pid] {
				continue
			}
			seen[pid] = true
			for _, c := range procfs.Children(int(pid)) {
				stack = append(stack, int32(c))
			}
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
				sm.CPUTime += time.Duration(total * float64(time.Second))
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
	if full {
		for id := range s.groups {
			if _, ok := out[id]; !ok {
				delete(s.groups, id)
			}
		}
		for pid := range s.handles {
			if !seen[pid] {
				delete(s.handles, pid)
			}
		}
		s.last = out
		return
	}
	for id, sm := range out {
		s.last[id] = sm
	}
}

// readGroups reads the cgroups of the running instances among roots, on as many goroutines as
// there are cores: a read is a few files of the kernel's, and with a thousand instances the
// reads are most of a scrape.
func readGroups(roots map[int]int, cgroups map[int]string) map[int]cgroup.Usage {
	var ids []int
	for id := range roots {
		if cgroups[id] != "" {
			ids = append(ids, id)
		}
	}
	got := make([]cgroup.Usage, len(ids))
	workers := min(runtime.GOMAXPROCS(0), 8, (len(ids)+63)/64)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < len(ids); i += workers {
				got[i] = cgroup.Read(cgroups[ids[i]])
			}
		}()
	}
	wg.Wait()
	out := make(map[int]cgroup.Usage, len(ids))
	for i, id := range ids {
		out[id] = got[i]
	}
	return out
}

// sampleGroup is one instance's sample from its cgroup's usage u; CPU is the change of its
// usage since the previous sample of the same cgroup.
func (s *Sampler) sampleGroup(id int, path string, u cgroup.Usage, now time.Time) Sample {
	if !u.OK {
		return Sample{}
	}
	sm := Sample{Memory: u.Memory, CPUTime: u.CPU}
	if m, ok := s.groups[id]; ok && m.path == path && u.CPU >= m.cpu {
		if wall := now.Sub(m.wall).Seconds(); wall > 0 {
			sm.CPU = (u.CPU - m.cpu).Seconds() / wall * 100
		}
	}
	s.groups[id] = groupMark{path: path, cpu: u.CPU, wall: now}
	return sm
}
