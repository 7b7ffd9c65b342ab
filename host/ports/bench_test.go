package ports

import (
	"net"
	"strconv"
	"testing"
)

// BenchmarkAutoCrowded assigns 100 ports from a 10,000-port range in which every other port is
// bound by a foreign listener. Target: under 50 ms per allocation.
func BenchmarkAutoCrowded(b *testing.B) {
	const lo, hi = 20000, 29999
	var listeners []net.Listener
	defer func() {
		for _, l := range listeners {
			l.Close()
		}
	}()
	for p := lo; p <= hi; p += 2 {
		l, err := net.Listen("tcp4", "0.0.0.0:"+strconv.Itoa(p))
		if err != nil {
			continue // already taken by someone else: just as crowded
		}
		listeners = append(listeners, l)
	}
	reg := NewRegistry()
	req := Request{App: "bench", Instances: 100, Spec: Spec{Kind: Auto, Start: lo, End: hi}}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		got, err := Allocate(req, reg, OSProber{})
		if err != nil {
			b.Fatal(err)
		}
		if len(got) != 100 {
			b.Fatalf("got %d ports", len(got))
		}
	}
}

func BenchmarkParseSpec(b *testing.B) {
	for i := 0; i < b.N; i++ {
		if _, err := ParseSpec("auto:5000-5100"); err != nil {
			b.Fatal(err)
		}
	}
}
