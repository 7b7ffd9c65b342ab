package main

import (
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/hashicorp/go-plugin"

	"github.com/pmdaemon/pmdaemon/plugins/sdk"
)

func TestConfigureRefusals(t *testing.T) {
	tests := []struct {
		name, config string
		want         []string // substrings of the error
	}{
		{"null", `null`, []string{"reserved-range: config must be a JSON object like {\"ranges\""}},
		{"array", `[1]`, []string{"config must be a JSON object"}},
		{"not JSON", `{"ranges":`, []string{"config must be a JSON object"}},
		{"unknown key", `{"ranges": {"1": "a"}, "mode": "auto"}`, []string{`unknown config key(s) "mode"`}},
		{"unknown keys", `{"b": 1, "a": 2, "ranges": {"1": "a"}}`, []string{`unknown config key(s) "a", "b"`}},
		{"no ranges", `{}`, []string{`"ranges" is required`}},
		{"null ranges", `{"ranges": null}`, []string{`"ranges" is required`}},
		{"ranges not an object", `{"ranges": ["9000"]}`, []string{`"ranges" must be an object`}},
		{"label not a string", `{"ranges": {"9000": 1}}`, []string{`"ranges" must be an object`}},
		{"empty ranges", `{"ranges": {}}`, []string{`"ranges" is empty`}},
		{"reversed", `{"ranges": {"9999-9000": "m"}}`, []string{`bad range "9999-9000": 9999 is greater than 9000`}},
		{"zero", `{"ranges": {"0": "m"}}`, []string{`bad range "0": port 0 is outside 1-65535`}},
		{"too big", `{"ranges": {"70000": "m"}}`, []string{`bad range "70000": port 70000 is outside 1-65535`}},
		{"too big end", `{"ranges": {"1-65536": "m"}}`, []string{`bad range "1-65536": port 65536 is outside 1-65535`}},
		{"word", `{"ranges": {"abc": "m"}}`, []string{`bad range "abc": want a port or an inclusive range "A-B"`}},
		{"negative", `{"ranges": {"-5": "m"}}`, []string{`bad range "-5"`}},
		{"spaces", `{"ranges": {"1 - 5": "m"}}`, []string{`bad range "1 - 5"`}},
		{"open range", `{"ranges": {"9000-": "m"}}`, []string{`bad range "9000-"`}},
		{"empty key", `{"ranges": {"": "m"}}`, []string{`bad range ""`}},
		{"empty label", `{"ranges": {"5432": ""}}`, []string{`range "5432" has an empty label`}},
		{"blank label", `{"ranges": {"5432": "  "}}`, []string{`range "5432" has an empty label`}},
		{"overlap", `{"ranges": {"9000-9999": "monitoring", "9500": "other"}}`,
			[]string{`ranges "9000-9999" (monitoring) and "9500" (other) overlap`}},
		{"touching ends overlap", `{"ranges": {"1-10": "a", "10-20": "b"}}`, []string{`ranges "1-10" (a) and "10-20" (b) overlap`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := &Allocator{}
			err := a.Configure(context.Background(), json.RawMessage(tt.config))
			if err == nil {
				t.Fatalf("Configure(%s) accepted it", tt.config)
			}
			if !strings.HasPrefix(err.Error(), "reserved-range: ") {
				t.Errorf("error %q does not start with the plugin's name", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if resp, _ := a.Allocate(context.Background(), sdk.AllocateRequest{Spec: "1", Instances: 1, Candidates: []int{1}}); resp.Reason != "not configured" {
				t.Errorf("after a refused first config, Allocate = %+v, want a denial \"not configured\"", resp)
			}
		})
	}
}

func TestConfigureAccepts(t *testing.T) {
	tests := []struct {
		name, config string
		want         policy
	}{
		{"example", `{"ranges": {"9000-9999": "monitoring", "5432": "postgres"}}`,
			policy{{5432, 5432, "postgres"}, {9000, 9999, "monitoring"}}},
		{"bounds", `{"ranges": {"1": "low", "65535": "high", "2-65534": "mid"}}`,
			policy{{1, 1, "low"}, {2, 65534, "mid"}, {65535, 65535, "high"}}},
		{"one-port range, trimmed label", `{"ranges": {"80-80": " http "}}`, policy{{80, 80, "http"}}},
		{"adjacent", `{"ranges": {"1-10": "a", "11-20": "b"}}`, policy{{1, 10, "a"}, {11, 20, "b"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := &Allocator{}
			if err := a.Configure(context.Background(), json.RawMessage(tt.config)); err != nil {
				t.Fatalf("Configure: %v", err)
			}
			if !reflect.DeepEqual(a.policy, tt.want) {
				t.Errorf("policy = %v, want %v", a.policy, tt.want)
			}
		})
	}
}

func seq(lo, hi int) []int {
	var out []int
	for p := lo; p <= hi; p++ {
		out = append(out, p)
	}
	return out
}

func without(xs []int, drop ...int) []int {
	var out []int
	for _, x := range xs {
		keep := true
		for _, d := range drop {
			keep = keep && x != d
		}
		if keep {
			out = append(out, x)
		}
	}
	return out
}

func TestAllocate(t *testing.T) {
	const config = `{"ranges": {"9000-9999": "monitoring", "5432": "postgres", "3000-3001": "grafana"}}`
	tests := []struct {
		name string
		req  sdk.AllocateRequest
		want sdk.AllocateResponse
	}{
		{"fixed, nothing reserved",
			sdk.AllocateRequest{App: "web", Instances: 4, Spec: "8000-8003", Candidates: seq(8000, 8003)},
			sdk.Allow(seq(8000, 8003))},
		{"fixed single reserved port",
			sdk.AllocateRequest{App: "db", Instances: 1, Spec: "5432", Candidates: []int{5432}},
			sdk.Deny(5432, "postgres (5432)")},
		{"fixed, lowest reserved candidate is named",
			sdk.AllocateRequest{App: "web", Instances: 21, Spec: "8990-9010", Candidates: seq(8990, 9010)},
			sdk.Deny(9000, "monitoring (9000-9999)")},
		{"fixed, first of two ranges",
			sdk.AllocateRequest{App: "web", Instances: 4, Spec: "2999-3002", Candidates: seq(2999, 3002)},
			sdk.Deny(3000, "grafana (3000-3001)")},
		{"fixed, reserved port not a candidate",
			sdk.AllocateRequest{App: "web", Instances: 2, Spec: "8999-9000", Candidates: []int{8999}},
			sdk.Deny(0, "only 1 candidate ports in 8999-9000, none of them reserved; 2 needed")},
		{"fixed, end of range",
			sdk.AllocateRequest{App: "web", Instances: 2, Spec: "9999-10000", Candidates: []int{9999, 10000}},
			sdk.Deny(9999, "monitoring (9000-9999)")},
		{"auto, filtered",
			sdk.AllocateRequest{App: "web", Instances: 3, Spec: "auto:8990-9010", Candidates: seq(8990, 9010)},
			sdk.Allow(seq(8990, 8999))},
		{"auto, filtered, more ranges",
			sdk.AllocateRequest{App: "web", Instances: 3, Spec: "auto:2998-3003", Candidates: without(seq(2998, 3003), 2999)},
			sdk.Allow([]int{2998, 3002, 3003})},
		{"auto, exactly enough",
			sdk.AllocateRequest{App: "web", Instances: 10, Spec: "auto:8990-9010", Candidates: seq(8990, 9010)},
			sdk.Allow(seq(8990, 8999))},
		{"auto, too few",
			sdk.AllocateRequest{App: "web", Instances: 12, Spec: "auto:8990-9010", Candidates: seq(8990, 9010)},
			sdk.Deny(0, "only 10 of 21 candidate ports in auto:8990-9010 are outside the reserved ranges (9000-9999 monitoring); 12 needed")},
		{"auto, too few, two ranges named",
			sdk.AllocateRequest{App: "web", Instances: 4, Spec: "auto:2999-5432", Candidates: []int{2999, 3000, 3001, 5432}},
			sdk.Deny(0, "only 1 of 4 candidate ports in auto:2999-5432 are outside the reserved ranges (3000-3001 grafana, 5432 postgres); 4 needed")},
		{"auto, all reserved",
			sdk.AllocateRequest{App: "web", Instances: 1, Spec: "auto:9000-9001", Candidates: []int{9000, 9001}},
			sdk.Deny(0, "only 0 of 2 candidate ports in auto:9000-9001 are outside the reserved ranges (9000-9999 monitoring); 1 needed")},
		{"auto, short without reserved ports",
			sdk.AllocateRequest{App: "web", Instances: 3, Spec: "auto:7000-7002", Candidates: []int{7000, 7002}},
			sdk.Deny(0, "only 2 candidate ports in auto:7000-7002, none of them reserved; 3 needed")},
		{"no candidates, no instances",
			sdk.AllocateRequest{App: "web", Instances: 0, Spec: "auto:9000-9001", Candidates: nil},
			sdk.Allow([]int{})},
	}
	a := &Allocator{}
	if err := a.Configure(context.Background(), json.RawMessage(config)); err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := a.Allocate(context.Background(), tt.req)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Allocate(%+v)\n got %+v\nwant %+v", tt.req, got, tt.want)
			}
		})
	}
}

func TestReconfigure(t *testing.T) {
	ctx := context.Background()
	req := sdk.AllocateRequest{App: "db", Instances: 1, Spec: "5432", Candidates: []int{5432}}
	a := &Allocator{}
	steps := []struct {
		config  string
		refused bool
		want    sdk.AllocateResponse
	}{
		{`{"ranges": {"5432": "postgres"}}`, false, sdk.Deny(5432, "postgres (5432)")},
		{`{"ranges": {"5432": ""}}`, true, sdk.Deny(5432, "postgres (5432)")},
		{`{"ranges": {"5000-6000": "db"}}`, false, sdk.Deny(5432, "db (5000-6000)")},
		{`{"ranges": {"9000": "x"}, "extra": 1}`, true, sdk.Deny(5432, "db (5000-6000)")},
		{`{"ranges": {"9000": "x"}}`, false, sdk.Allow([]int{5432})},
	}
	if got, _ := a.Allocate(ctx, req); !reflect.DeepEqual(got, sdk.Deny(0, "not configured")) {
		t.Fatalf("before Configure: %+v", got)
	}
	for i, s := range steps {
		err := a.Configure(ctx, json.RawMessage(s.config))
		if (err != nil) != s.refused {
			t.Fatalf("step %d: Configure(%s) = %v, refused want %v", i, s.config, err, s.refused)
		}
		if got, _ := a.Allocate(ctx, req); !reflect.DeepEqual(got, s.want) {
			t.Errorf("step %d: after Configure(%s): %+v, want %+v", i, s.config, got, s.want)
		}
	}
}

// TestConcurrent runs Configure and Allocate together, for the race detector.
func TestConcurrent(t *testing.T) {
	a := &Allocator{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 200 {
			_ = a.Configure(context.Background(), json.RawMessage(`{"ranges": {"5432": "postgres"}}`))
		}
	}()
	for range 200 {
		resp, _ := a.Allocate(context.Background(), sdk.AllocateRequest{Instances: 1, Spec: "5432", Candidates: []int{5432}})
		if !resp.Denied {
			t.Fatalf("allowed a reserved port: %+v", resp)
		}
	}
	<-done
}

// TestOverGRPC runs the plugin as the daemon sees it.
func TestOverGRPC(t *testing.T) {
	client, server := plugin.TestPluginGRPCConn(t, false, sdk.TestPluginSet(sdk.ServeOpts{Allocator: &Allocator{}}))
	t.Cleanup(func() {
		server.Stop()
		_ = client.Close()
	})
	raw, err := client.Dispense(sdk.KindAllocator)
	if err != nil {
		t.Fatal(err)
	}
	a := raw.(sdk.Allocator)
	ctx := context.Background()

	err = a.Configure(ctx, json.RawMessage(`{"ranges": {"9999-9000": "m"}}`))
	if !sdk.IsConfigError(err) || err.Error() != `reserved-range: bad range "9999-9000": 9999 is greater than 9000` {
		t.Errorf("bad config: %v (config error: %v)", err, sdk.IsConfigError(err))
	}
	if err := a.Configure(ctx, json.RawMessage(`{"ranges": {"9000-9999": "monitoring"}}`)); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		req  sdk.AllocateRequest
		want sdk.AllocateResponse
	}{
		{sdk.AllocateRequest{App: "m", Instances: 1, Spec: "9090", Candidates: []int{9090}, Assignments: map[int]string{80: "x"}},
			sdk.AllocateResponse{Ports: []int{}, Denied: true, DeniedPort: 9090, Reason: "monitoring (9000-9999)"}},
		{sdk.AllocateRequest{App: "w", Instances: 2, Spec: "auto:8998-9001", Candidates: seq(8998, 9001)},
			sdk.AllocateResponse{Ports: []int{8998, 8999}}},
	}
	for _, tt := range tests {
		got, err := a.Allocate(ctx, tt.req)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("Allocate(%+v) = %+v, want %+v", tt.req, got, tt.want)
		}
	}
}
