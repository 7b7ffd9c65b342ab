package ports

import (
	"reflect"
	"testing"
)

func TestRegistryReserveAndQuery(t *testing.T) {
	r := NewRegistry()
	if got := r.Assigned(); len(got) != 0 {
		t.Fatalf("new registry Assigned() = %v, want empty", got)
	}
	if _, ok := r.Holder(3000); ok {
		t.Fatal("new registry holds 3000")
	}
	if err := r.Reserve("app1", []int{3002, 3000, 3001}); err != nil {
		t.Fatal(err)
	}
	if err := r.Reserve("app2", []int{8000}); err != nil {
		t.Fatal(err)
	}
	// Reserving again what the app already holds is fine.
	if err := r.Reserve("app1", []int{3000, 3003}); err != nil {
		t.Fatalf("re-reserve own port: %v", err)
	}
	for _, tt := range []struct {
		port   int
		holder string
		ok     bool
	}{
		{3000, "app1", true}, {3001, "app1", true}, {3002, "app1", true}, {3003, "app1", true},
		{8000, "app2", true}, {8001, "", false}, {2999, "", false},
	} {
		h, ok := r.Holder(tt.port)
		if h != tt.holder || ok != tt.ok {
			t.Errorf("Holder(%d) = %q, %v; want %q, %v", tt.port, h, ok, tt.holder, tt.ok)
		}
	}
	if got, want := r.PortsOf("app1"), []int{3000, 3001, 3002, 3003}; !reflect.DeepEqual(got, want) {
		t.Errorf("PortsOf(app1) = %v, want %v (ascending)", got, want)
	}
	if got := r.PortsOf("nobody"); len(got) != 0 {
		t.Errorf("PortsOf(nobody) = %v, want empty", got)
	}
	want := map[int]string{3000: "app1", 3001: "app1", 3002: "app1", 3003: "app1", 8000: "app2"}
	got := r.Assigned()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Assigned() = %v, want %v", got, want)
	}
	// Assigned is a copy.
	got[9999] = "intruder"
	delete(got, 3000)
	if _, ok := r.Holder(9999); ok {
		t.Error("writing to Assigned()'s map changed the registry")
	}
	if h, _ := r.Holder(3000); h != "app1" {
		t.Error("deleting from Assigned()'s map changed the registry")
	}
}

func TestRegistryConflict(t *testing.T) {
	tests := []struct {
		name    string
		ports   []int
		wantErr string
	}{
		{"single conflicting port", []int{3000}, "Port 3000 is already assigned to process 'app1'"},
		{"conflict after free ports", []int{4000, 4001, 3001}, "Port 3001 is already assigned to process 'app1'"},
		{"conflict first", []int{3000, 4000}, "Port 3000 is already assigned to process 'app1'"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewRegistry()
			if err := r.Reserve("app1", []int{3000, 3001}); err != nil {
				t.Fatal(err)
			}
			before := r.Assigned()
			err := r.Reserve("app2", tt.ports)
			if err == nil || err.Error() != tt.wantErr {
				t.Fatalf("Reserve(app2, %v) error = %v, want %q", tt.ports, err, tt.wantErr)
			}
			if after := r.Assigned(); !reflect.DeepEqual(after, before) {
				t.Fatalf("a failed Reserve changed the registry: before %v, after %v", before, after)
			}
			if got := r.PortsOf("app2"); len(got) != 0 {
				t.Fatalf("app2 holds %v after a failed Reserve", got)
			}
		})
	}
}

func TestRegistryRelease(t *testing.T) {
	tests := []struct {
		name    string
		release func(r *Registry)
		want    map[int]string
	}{
		{"ReleaseApp frees all of one app", func(r *Registry) { r.ReleaseApp("a") },
			map[int]string{4000: "b"}},
		{"ReleaseApp of unknown app", func(r *Registry) { r.ReleaseApp("zzz") },
			map[int]string{3000: "a", 3001: "a", 3002: "a", 4000: "b"}},
		{"Release some", func(r *Registry) { r.Release("a", []int{3000, 3002}) },
			map[int]string{3001: "a", 4000: "b"}},
		{"Release ignores ports held by another app", func(r *Registry) { r.Release("a", []int{4000, 3001}) },
			map[int]string{3000: "a", 3002: "a", 4000: "b"}},
		{"Release of unheld ports", func(r *Registry) { r.Release("a", []int{5000}) },
			map[int]string{3000: "a", 3001: "a", 3002: "a", 4000: "b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewRegistry()
			if err := r.Reserve("a", []int{3000, 3001, 3002}); err != nil {
				t.Fatal(err)
			}
			if err := r.Reserve("b", []int{4000}); err != nil {
				t.Fatal(err)
			}
			tt.release(r)
			if got := r.Assigned(); !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("Assigned() = %v, want %v", got, tt.want)
			}
		})
	}
	// A released port can be reserved by another app.
	r := NewRegistry()
	if err := r.Reserve("a", []int{3000}); err != nil {
		t.Fatal(err)
	}
	r.ReleaseApp("a")
	if err := r.Reserve("b", []int{3000}); err != nil {
		t.Fatalf("reserve after release: %v", err)
	}
}
