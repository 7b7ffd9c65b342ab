package ports

import (
	"math/rand/v2"
	"slices"
	"sort"
	"testing"
)

// TestRegistryIndexAgrees: after any sequence of reserves and releases, what PortsOf says an
// app holds (the per-app index) is exactly the ports Holder and Assigned give to it (the
// port index), including after an app released everything and reserves again.
func TestRegistryIndexAgrees(t *testing.T) {
	apps := []string{"api", "web", "worker"}
	for _, tc := range []struct {
		name string
		seed uint64
		ops  int
	}{
		{"short", 1, 50},
		{"long", 2, 2000},
		{"another seed", 3, 2000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(tc.seed, tc.seed))
			r := NewRegistry()
			for i := 0; i < tc.ops; i++ {
				app := apps[rng.IntN(len(apps))]
				ports := []int{3000 + rng.IntN(20), 3000 + rng.IntN(20)}
				switch rng.IntN(4) {
				case 0, 1:
					r.Reserve(app, ports)
				case 2:
					r.Release(app, ports)
				case 3:
					r.ReleaseApp(app)
				}
				assigned := r.Assigned()
				for _, a := range apps {
					var want []int
					for p, holder := range assigned {
						if holder == a {
							want = append(want, p)
						}
					}
					sort.Ints(want)
					if got := r.PortsOf(a); !slices.Equal(got, want) {
						t.Fatalf("op %d: PortsOf(%s) = %v; the port index gives it %v", i, a, got, want)
					}
					for _, p := range want {
						if h, ok := r.Holder(p); !ok || h != a {
							t.Fatalf("op %d: Holder(%d) = %q, %v; want %q", i, p, h, ok, a)
						}
					}
				}
			}
		})
	}
}
