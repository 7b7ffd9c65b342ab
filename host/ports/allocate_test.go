package ports

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"reflect"
	"strconv"
	"testing"
	"time"
)

// freeRegion returns a base port B such that B..B+n-1 are all free on the OS right now, taken
// outside the ephemeral range so that outgoing connections of other programs rarely land in it.
func freeRegion(t *testing.T, n int) int {
	t.Helper()
	for range 200 {
		base := 10000 + rand.IntN(20000)
		ok := true
		for p := base; p < base+n; p++ {
			if (OSProber{}).Probe(p) != nil {
				ok = false
				break
			}
		}
		if ok {
			return base
		}
	}
	t.Fatalf("found no free region of %d ports", n)
	return 0
}

// listen binds a real TCP listener ("tcp4" on 127.0.0.1 or "tcp6" on [::1]) on port for the
// rest of the test.
func listen(t *testing.T, network string, port int) net.Listener {
	t.Helper()
	host := "127.0.0.1"
	if network == "tcp6" {
		host = "::1"
	}
	l, err := net.Listen(network, net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		t.Fatalf("listen %s port %d: %v", network, port, err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// listenAny binds a listener on a port the kernel picks and returns the port.
func listenAny(t *testing.T, network string) int {
	t.Helper()
	l := listen(t, network, 0)
	return l.Addr().(*net.TCPAddr).Port
}

func TestOSProber(t *testing.T) {
	tests := []struct {
		name    string
		network string
	}{
		{"tcp4 listener on 127.0.0.1", "tcp4"},
		{"tcp6 listener on [::1]", "tcp6"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := listenAny(t, tt.network)
			if err := (OSProber{}).Probe(p); !errors.Is(err, ErrInUse) {
				t.Fatalf("Probe(%d) with a %s listener = %v, want ErrInUse", p, tt.network, err)
			}
		})
	}
	t.Run("wildcard listener", func(t *testing.T) {
		l, err := net.Listen("tcp", ":0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		p := l.Addr().(*net.TCPAddr).Port
		if err := (OSProber{}).Probe(p); !errors.Is(err, ErrInUse) {
			t.Fatalf("Probe(%d) = %v, want ErrInUse", p, err)
		}
	})
	t.Run("closed port is free", func(t *testing.T) {
		l, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		p := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if err := (OSProber{}).Probe(p); err != nil {
			t.Fatalf("Probe(%d) after close = %v, want nil", p, err)
		}
	})
	t.Run("TIME_WAIT port is free", func(t *testing.T) {
		l, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		p := l.Addr().(*net.TCPAddr).Port
		c, err := net.Dial("tcp4", l.Addr().String())
		if err != nil {
			l.Close()
			t.Fatal(err)
		}
		s, err := l.Accept()
		if err != nil {
			l.Close()
			c.Close()
			t.Fatal(err)
		}
		// The server side closes first, so the TIME_WAIT socket holds the listener's port.
		s.Close()
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadAll(c); err != nil {
			t.Fatalf("waiting for the server's FIN: %v", err)
		}
		c.Close()
		l.Close()
		if err := (OSProber{}).Probe(p); err != nil {
			t.Fatalf("Probe(%d) with only a TIME_WAIT socket = %v, want nil", p, err)
		}
	})
}

func TestAllocateRange(t *testing.T) {
	base := freeRegion(t, 8)
	tests := []struct {
		name      string
		instances int
		spec      Spec
		want      []int
	}{
		{"exact range", 4, Spec{Kind: Range, Start: base, End: base + 3}, []int{base, base + 1, base + 2, base + 3}},
		{"range larger than instances", 2, Spec{Kind: Range, Start: base, End: base + 7}, []int{base, base + 1}},
		{"single", 1, Spec{Kind: Single, Start: base + 5, End: base + 5}, []int{base + 5}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := NewRegistry()
			got, err := Allocate(Request{App: "web", Instances: tt.instances, Spec: tt.spec}, reg, OSProber{})
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("Allocate = %v, want %v", got, tt.want)
			}
			if a := reg.Assigned(); len(a) != 0 {
				t.Fatalf("Allocate reserved %v; it must leave reserving to the caller", a)
			}
		})
	}
}

func TestAllocateFixedConflicts(t *testing.T) {
	base := freeRegion(t, 4)
	listen(t, "tcp4", base+2) // a foreign process
	tests := []struct {
		name    string
		app     string
		spec    Spec
		n       int
		wantErr string
	}{
		{"held by another app", "app2", Spec{Kind: Single, Start: base, End: base}, 1,
			fmt.Sprintf("Port %d is already assigned to process 'app1'", base)},
		{"range crossing another app's port", "app2", Spec{Kind: Range, Start: base, End: base + 1}, 2,
			fmt.Sprintf("Port %d is already assigned to process 'app1'", base)},
		{"bound by a foreign process", "app2", Spec{Kind: Single, Start: base + 2, End: base + 2}, 1,
			fmt.Sprintf("Port %d is already in use by another process", base+2)},
		{"range too small", "app2", Spec{Kind: Range, Start: base, End: base + 1}, 4,
			fmt.Sprintf("Port range %d-%d has only 2 ports but 4 instances requested", base, base+1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := NewRegistry()
			if err := reg.Reserve("app1", []int{base}); err != nil {
				t.Fatal(err)
			}
			got, err := Allocate(Request{App: tt.app, Instances: tt.n, Spec: tt.spec}, reg, OSProber{})
			if err == nil || err.Error() != tt.wantErr {
				t.Fatalf("Allocate = %v, %v; want error %q", got, err, tt.wantErr)
			}
		})
	}
}

func TestAllocateOwnPortsSkipOSCheck(t *testing.T) {
	base := freeRegion(t, 4)
	// The app's own running instances are bound to the ports it holds.
	listen(t, "tcp4", base)
	listen(t, "tcp6", base+1)
	reg := NewRegistry()
	if err := reg.Reserve("web", []int{base, base + 1}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		spec Spec
		n    int
		want []int
	}{
		{"single", Spec{Kind: Single, Start: base, End: base}, 1, []int{base}},
		{"range", Spec{Kind: Range, Start: base, End: base + 2}, 3, []int{base, base + 1, base + 2}},
		{"auto", Spec{Kind: Auto, Start: base, End: base + 3}, 3, []int{base, base + 1, base + 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Allocate(Request{App: "web", Instances: tt.n, Spec: tt.spec}, reg, OSProber{})
			if err != nil {
				t.Fatalf("restarting an app on its own ports was refused: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("Allocate = %v, want %v", got, tt.want)
			}
		})
	}
	// The same ports are a conflict for anyone else.
	_, err := Allocate(Request{App: "other", Instances: 1, Spec: Spec{Kind: Single, Start: base, End: base}}, reg, OSProber{})
	if want := fmt.Sprintf("Port %d is already assigned to process 'web'", base); err == nil || err.Error() != want {
		t.Fatalf("other app on web's port: err = %v, want %q", err, want)
	}
}

func TestAllocateAutoSkipsTakenPorts(t *testing.T) {
	// The spec's example: in auto:5000-5010, 5000, 5002 and 5005 are free; the others in
	// between are taken, by the registry or by the OS, over IPv4 and IPv6.
	base := freeRegion(t, 11)
	reg := NewRegistry()
	if err := reg.Reserve("other", []int{base + 1}); err != nil {
		t.Fatal(err)
	}
	listen(t, "tcp4", base+3)
	listen(t, "tcp6", base+4)
	before := reg.Assigned()
	req := Request{App: "workers", Instances: 3, Spec: Spec{Kind: Auto, Start: base, End: base + 10}}
	got, err := Allocate(req, reg, OSProber{})
	if err != nil {
		t.Fatal(err)
	}
	if want := []int{base, base + 2, base + 5}; !reflect.DeepEqual(got, want) {
		t.Fatalf("Allocate = %v, want %v (offsets 0, 2, 5)", got, want)
	}
	if after := reg.Assigned(); !reflect.DeepEqual(after, before) {
		t.Fatalf("Allocate changed the registry: %v -> %v", before, after)
	}

	cands, err := Candidates(req, reg, OSProber{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	want := []int{base, base + 2, base + 5, base + 6, base + 7, base + 8, base + 9, base + 10}
	if !reflect.DeepEqual(cands, want) {
		t.Fatalf("Candidates(limit 0) = %v, want %v", cands, want)
	}
	cands, err = Candidates(req, reg, OSProber{}, 2)
	if err != nil {
		t.Fatal(err)
	}
	if want := []int{base, base + 2}; !reflect.DeepEqual(cands, want) {
		t.Fatalf("Candidates(limit 2) = %v, want %v", cands, want)
	}
}

func TestAllocateAutoNotEnough(t *testing.T) {
	base := freeRegion(t, 4)
	reg := NewRegistry()
	if err := reg.Reserve("other", []int{base + 1}); err != nil {
		t.Fatal(err)
	}
	listen(t, "tcp4", base+2)
	tests := []struct {
		n       int
		wantErr string
	}{
		{3, fmt.Sprintf("Not enough free ports in auto:%d-%d: 2 free, 3 needed", base, base+3)},
		{4, fmt.Sprintf("Not enough free ports in auto:%d-%d: 2 free, 4 needed", base, base+3)},
		{5, fmt.Sprintf("Port range auto:%d-%d has only 4 ports but 5 instances requested", base, base+3)},
	}
	for _, tt := range tests {
		t.Run(strconv.Itoa(tt.n), func(t *testing.T) {
			req := Request{App: "workers", Instances: tt.n, Spec: Spec{Kind: Auto, Start: base, End: base + 3}}
			got, err := Allocate(req, reg, OSProber{})
			if err == nil || err.Error() != tt.wantErr {
				t.Fatalf("Allocate = %v, %v; want error %q", got, err, tt.wantErr)
			}
		})
	}
	// Two still fit.
	req := Request{App: "workers", Instances: 2, Spec: Spec{Kind: Auto, Start: base, End: base + 3}}
	got, err := Allocate(req, reg, OSProber{})
	if err != nil {
		t.Fatal(err)
	}
	if want := []int{base, base + 3}; !reflect.DeepEqual(got, want) {
		t.Fatalf("Allocate = %v, want %v", got, want)
	}
}

func TestAllocateKeeping(t *testing.T) {
	base := freeRegion(t, 10)
	tests := []struct {
		name  string
		spec  Spec
		n     int
		keep  func(base int) []int
		setup func(t *testing.T, reg *Registry) // what is held and bound besides the kept ports
		want  func(base int) []int
	}{
		{
			name: "auto fills only the gaps, ascending",
			spec: Spec{Kind: Auto, Start: base, End: base + 9},
			n:    4,
			keep: func(b int) []int { return []int{b + 7, 0, b + 3, 0} },
			setup: func(t *testing.T, reg *Registry) {
				listen(t, "tcp4", base) // foreign
			},
			want: func(b int) []int { return []int{b + 7, b + 1, b + 3, b + 2} },
		},
		{
			name: "auto keeps everything when nothing is missing",
			spec: Spec{Kind: Auto, Start: base, End: base + 9},
			n:    2,
			keep: func(b int) []int { return []int{b + 5, b + 6} },
			want: func(b int) []int { return []int{b + 5, b + 6} },
		},
		{
			name: "auto with a shorter keep list",
			spec: Spec{Kind: Auto, Start: base, End: base + 9},
			n:    3,
			keep: func(b int) []int { return []int{b} },
			want: func(b int) []int { return []int{b, b + 1, b + 2} },
		},
		{
			name: "auto scale down ignores surplus keep entries",
			spec: Spec{Kind: Auto, Start: base, End: base + 9},
			n:    1,
			keep: func(b int) []int { return []int{b + 4, b + 8} },
			want: func(b int) []int { return []int{b + 4} },
		},
		{
			name: "range fills gaps with start+i",
			spec: Spec{Kind: Range, Start: base, End: base + 3},
			n:    4,
			keep: func(b int) []int { return []int{b, 0, b + 2, 0} },
			want: func(b int) []int { return []int{b, b + 1, b + 2, b + 3} },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := NewRegistry()
			keep := tt.keep(base)
			var held []int
			for _, p := range keep {
				if p > 0 {
					held = append(held, p)
					listen(t, "tcp4", p) // the app's running instance
				}
			}
			if err := reg.Reserve("web", held); err != nil {
				t.Fatal(err)
			}
			if tt.setup != nil {
				tt.setup(t, reg)
			}
			got, err := AllocateKeeping(Request{App: "web", Instances: tt.n, Spec: tt.spec}, keep, reg, OSProber{})
			if err != nil {
				t.Fatal(err)
			}
			if want := tt.want(base); !reflect.DeepEqual(got, want) {
				t.Fatalf("AllocateKeeping(keep %v) = %v, want %v", keep, got, want)
			}
		})
	}
}

func TestAllocateKeepingNotEnough(t *testing.T) {
	base := freeRegion(t, 3)
	reg := NewRegistry()
	if err := reg.Reserve("web", []int{base}); err != nil {
		t.Fatal(err)
	}
	listen(t, "tcp4", base) // web's own instance
	listen(t, "tcp4", base+1)
	req := Request{App: "web", Instances: 3, Spec: Spec{Kind: Auto, Start: base, End: base + 2}}
	got, err := AllocateKeeping(req, []int{base, 0, 0}, reg, OSProber{})
	want := fmt.Sprintf("Not enough free ports in auto:%d-%d: 2 free, 3 needed", base, base+2)
	if err == nil || err.Error() != want {
		t.Fatalf("AllocateKeeping = %v, %v; want error %q", got, err, want)
	}
}
