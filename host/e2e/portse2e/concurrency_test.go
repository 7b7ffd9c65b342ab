package portse2e

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/pmdaemon/pmdaemon/host/api"
	"github.com/pmdaemon/pmdaemon/host/e2e/harness"
)

// Acceptance 10: 20 CLIs racing on one auto range (and on a daemon not yet running) get 20
// distinct ports and 20 online apps.
func TestConcurrentAutoStarts(t *testing.T) {
	t.Parallel()
	h := harness.NewHome(t)
	b := harness.FreePorts(t, 101)
	const n = 20
	results := make([]harness.Result, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = h.Exec("start", harness.Echo, "--name", fmt.Sprintf("w%d", i), "--port", harness.AutoRange(b, b+100))
		}()
	}
	wg.Wait()
	for i, r := range results {
		if r.Code != 0 {
			t.Errorf("start w%d: exit %d\nstderr: %s", i, r.Code, r.Stderr)
		}
	}
	rows := h.WaitList(60*time.Second, "20 apps online", func(rows []api.Instance) bool {
		for i := 0; i < n; i++ {
			if !harness.AllOnline(fmt.Sprintf("w%d", i), 1)(rows) {
				return false
			}
		}
		return len(rows) == n
	})
	seen := map[int]string{}
	for _, r := range rows {
		if r.Port == nil {
			t.Errorf("%s has no port", r.Name)
			continue
		}
		p := *r.Port
		if p < b || p > b+100 {
			t.Errorf("%s got port %d outside %d-%d", r.Name, p, b, b+100)
		}
		if other, dup := seen[p]; dup {
			t.Errorf("port %d given to both %s and %s", p, other, r.Name)
		}
		seen[p] = r.Name
	}
	if len(seen) != n {
		t.Errorf("%d distinct ports, want %d", len(seen), n)
	}
	for p, name := range seen {
		harness.WaitWho(t, p, name, 0)
	}
}
