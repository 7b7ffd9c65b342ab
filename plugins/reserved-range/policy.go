package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/pmdaemon/pmdaemon/plugins/sdk"
)

const configShape = `{"ranges": {"9000-9999": "monitoring", "5432": "postgres"}}`

// reserved is one reserved range, lo..hi inclusive.
type reserved struct {
	lo, hi int
	label  string
}

func (r reserved) String() string {
	if r.lo == r.hi {
		return strconv.Itoa(r.lo)
	}
	return fmt.Sprintf("%d-%d", r.lo, r.hi)
}

// policy is a parsed configuration: non-overlapping ranges ascending.
type policy []reserved

// find returns the range holding port, if any.
func (p policy) find(port int) (reserved, bool) {
	i := sort.Search(len(p), func(i int) bool { return p[i].hi >= port })
	if i < len(p) && p[i].lo <= port {
		return p[i], true
	}
	return reserved{}, false
}

var keyRE = regexp.MustCompile(`^([0-9]+)(?:-([0-9]+))?$`)

func parseKey(key string) (lo, hi int, err error) {
	m := keyRE.FindStringSubmatch(key)
	if m == nil {
		return 0, 0, fmt.Errorf(`bad range %q: want a port or an inclusive range "A-B" of ports 1-65535`, key)
	}
	port := func(s string) (int, error) {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 65535 {
			return 0, fmt.Errorf("bad range %q: port %s is outside 1-65535", key, s)
		}
		return n, nil
	}
	if lo, err = port(m[1]); err != nil {
		return 0, 0, err
	}
	hi = lo
	if m[2] != "" {
		if hi, err = port(m[2]); err != nil {
			return 0, 0, err
		}
		if lo > hi {
			return 0, 0, fmt.Errorf("bad range %q: %d is greater than %d", key, lo, hi)
		}
	}
	return lo, hi, nil
}

// parseConfig validates a configuration document. Errors name what is wrong and are shown to the
// user as they are.
func parseConfig(config json.RawMessage) (policy, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(config, &top); err != nil || top == nil {
		return nil, fmt.Errorf("config must be a JSON object like %s", configShape)
	}
	var unknown []string
	for k := range top {
		if k != "ranges" {
			unknown = append(unknown, strconv.Quote(k))
		}
	}
	if len(unknown) > 0 {
		slices.Sort(unknown)
		return nil, fmt.Errorf(`unknown config key(s) %s; the only key is "ranges", e.g. %s`, strings.Join(unknown, ", "), configShape)
	}
	raw, ok := top["ranges"]
	if !ok || bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		return nil, fmt.Errorf(`"ranges" is required, e.g. %s`, configShape)
	}
	var ranges map[string]string
	if err := json.Unmarshal(raw, &ranges); err != nil {
		return nil, fmt.Errorf(`"ranges" must be an object mapping a port or "A-B" range to a label, e.g. %s`, configShape)
	}
	if len(ranges) == 0 {
		return nil, fmt.Errorf(`"ranges" is empty; reserve at least one port or range, e.g. %s`, configShape)
	}
	keys := make([]string, 0, len(ranges))
	for k := range ranges {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var p policy
	for _, k := range keys {
		lo, hi, err := parseKey(k)
		if err != nil {
			return nil, err
		}
		label := strings.TrimSpace(ranges[k])
		if label == "" {
			return nil, fmt.Errorf("range %q has an empty label; say what the ports are reserved for", k)
		}
		p = append(p, reserved{lo: lo, hi: hi, label: label})
	}
	slices.SortFunc(p, func(a, b reserved) int { return a.lo - b.lo })
	for i := 1; i < len(p); i++ {
		if a, b := p[i-1], p[i]; b.lo <= a.hi {
			return nil, fmt.Errorf("ranges %q (%s) and %q (%s) overlap", a.String(), a.label, b.String(), b.label)
		}
	}
	return p, nil
}

// allocate applies the policy. A fixed spec is denied if any of its candidates is reserved; an
// auto: spec keeps the candidates outside the reserved ranges and is denied only when too few
// remain.
func (p policy) allocate(req sdk.AllocateRequest) sdk.AllocateResponse {
	var allowed []int
	var hit []reserved // the ranges that hold a candidate, ascending
	for _, c := range req.Candidates {
		r, ok := p.find(c)
		if !ok {
			allowed = append(allowed, c)
			continue
		}
		if !strings.HasPrefix(req.Spec, "auto:") {
			return sdk.Deny(c, fmt.Sprintf("%s (%s)", r.label, r))
		}
		if len(hit) == 0 || hit[len(hit)-1] != r {
			hit = append(hit, r)
		}
	}
	if len(allowed) >= req.Instances {
		if allowed == nil {
			allowed = []int{}
		}
		return sdk.Allow(allowed)
	}
	// The daemon wants at least Instances ports or a denial.
	if len(hit) == 0 {
		return sdk.Deny(0, fmt.Sprintf("only %d candidate ports in %s, none of them reserved; %d needed",
			len(req.Candidates), req.Spec, req.Instances))
	}
	names := make([]string, len(hit))
	for i, r := range hit {
		names[i] = r.String() + " " + r.label
	}
	return sdk.Deny(0, fmt.Sprintf("only %d of %d candidate ports in %s are outside the reserved ranges (%s); %d needed",
		len(allowed), len(req.Candidates), req.Spec, strings.Join(names, ", "), req.Instances))
}

// Allocator is the plugin: the policy of the last configuration accepted.
type Allocator struct {
	mu     sync.Mutex
	policy policy // nil until configured
}

var _ sdk.Allocator = (*Allocator)(nil)

// Configure replaces the policy; a refused configuration leaves the previous one in force.
func (a *Allocator) Configure(_ context.Context, config json.RawMessage) error {
	p, err := parseConfig(config)
	if err != nil {
		return fmt.Errorf("reserved-range: %w", err)
	}
	a.mu.Lock()
	a.policy = p
	a.mu.Unlock()
	return nil
}

func (a *Allocator) Allocate(_ context.Context, req sdk.AllocateRequest) (sdk.AllocateResponse, error) {
	a.mu.Lock()
	p := a.policy
	a.mu.Unlock()
	if p == nil {
		return sdk.Deny(0, "not configured"), nil
	}
	return p.allocate(req), nil
}
