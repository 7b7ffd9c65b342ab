package cli

import (
	"encoding/json"
	"io"
	"testing"
	"time"

	"github.com/pmdaemon/pmdaemon/host/api"
)

func rows(n int) []api.Instance {
	out := make([]api.Instance, n)
	for i := range out {
		port := 3000 + i
		out[i] = api.Instance{
			ID: i, Name: "web", Index: i, Status: "online", Pid: 10000 + i, Port: &port,
			CPU: 1.5, Memory: 45 << 20, UptimeMS: int64(time.Hour / time.Millisecond), Restarts: 2,
		}
	}
	return out
}

// BenchmarkRenderList100 is the table `pmdaemon list` prints for 100 instances.
func BenchmarkRenderList100(b *testing.B) {
	rs := rows(100)
	for b.Loop() {
		if err := RenderList(io.Discard, rs, true); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkListJSON100 is what `pmdaemon list --json` encodes for 100 instances.
func BenchmarkListJSON100(b *testing.B) {
	rs := rows(100)
	for b.Loop() {
		if err := json.NewEncoder(io.Discard).Encode(rs); err != nil {
			b.Fatal(err)
		}
	}
}
