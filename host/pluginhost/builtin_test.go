package pluginhost

import (
	"context"
	"encoding/json"
	"io"
	"slices"
	"testing"

	"github.com/pmdaemon/pmdaemon/plugins/sdk"
)

func TestBuiltinAllocatorTakesLowestCandidates(t *testing.T) {
	for _, tc := range []struct {
		name  string
		n     int
		cands []int
		want  []int
	}{
		{"exactly enough", 2, []int{3000, 3001}, []int{3000, 3001}},
		{"lowest of many", 3, []int{5004, 5000, 5009, 5001, 5002}, []int{5000, 5001, 5002}},
		{"repeated candidates count once", 2, []int{7000, 7000, 7001}, []int{7000, 7001}},
		{"fewer than asked: all of them, the caller reports the shortage", 4, []int{9001, 9000}, []int{9000, 9001}},
		{"none", 1, nil, []int{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := slices.Clone(tc.cands)
			resp, err := Builtin{}.Allocate(context.Background(), sdk.AllocateRequest{App: "web", Instances: tc.n, Candidates: in})
			if err != nil || resp.Denied {
				t.Fatalf("Allocate = %+v, %v; want an allowance", resp, err)
			}
			if !slices.Equal(resp.Ports, tc.want) && !(len(resp.Ports) == 0 && len(tc.want) == 0) {
				t.Fatalf("ports %v, want %v", resp.Ports, tc.want)
			}
			if !slices.Equal(in, tc.cands) {
				t.Fatalf("the request's candidates were changed: %v, were %v", in, tc.cands)
			}
		})
	}
}

func TestBuiltinAllocatorRefusesConfiguration(t *testing.T) {
	for _, tc := range []struct {
		config string
		ok     bool
	}{{"", true}, {"null", true}, {`{"ranges":{}}`, false}, {`[]`, false}} {
		err := Builtin{}.Configure(context.Background(), json.RawMessage(tc.config))
		if (err == nil) != tc.ok {
			t.Errorf("Configure(%q) = %v, want ok=%v", tc.config, err, tc.ok)
		}
		if err != nil && !sdk.IsConfigError(err) {
			t.Errorf("Configure(%q) = %v, want a configuration refusal", tc.config, err)
		}
	}
}

// With no policy plugin registered the chain is the built-in policy alone.
func TestChainWithoutPluginsIsTheBuiltinPolicy(t *testing.T) {
	m := NewManager(io.Discard)
	defer m.Close()
	got, err := m.Allocate(sdk.AllocateRequest{App: "web", Instances: 2, Spec: "auto:8000-8010", Candidates: []int{8004, 8002, 8007}})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, []int{8002, 8004}) {
		t.Fatalf("got %v, want [8002 8004]", got)
	}
}
