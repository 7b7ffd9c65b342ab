// Package ports parses port specs, keeps the registry of ports held by apps, probes the OS for
// ports bound outside pmdaemon, and allocates ports to the instances of an app.
package ports

import (
	"fmt"
	"strconv"
	"strings"
)

// Kind tells how a spec assigns ports to instances.
type Kind int

const (
	Single Kind = iota // one fixed port, one instance
	Range              // instance i gets Start+i
	Auto               // the first free ports of Start..End, ascending
)

// Spec is a parsed port spec: "3000", "3000-3003" or "auto:5000-5100".
type Spec struct {
	Kind       Kind
	Start, End int
}

// ParseSpec parses a port spec. Every error quotes the spec and says what is wrong.
func ParseSpec(s string) (Spec, error) {
	raw := s
	s = strings.TrimSpace(s)
	bad := func(why string) (Spec, error) {
		return Spec{}, fmt.Errorf("invalid port spec %q: %s", raw, why)
	}
	if s == "" {
		return bad("it is empty; use a port (3000), a range (3000-3003) or auto:START-END")
	}
	kind := Range
	body := s
	if rest, ok := strings.CutPrefix(s, "auto:"); ok {
		kind, body = Auto, rest
		if body == "" {
			return bad("auto: needs a range, like auto:5000-5100")
		}
		if !strings.Contains(body, "-") {
			return bad("auto: needs a range START-END, like auto:5000-5100, not a single port")
		}
	}
	lo, hi, isRange := strings.Cut(body, "-")
	a, err := parsePort(lo)
	if err != nil {
		return bad(err.Error())
	}
	if !isRange {
		return Spec{Kind: Single, Start: a, End: a}, nil
	}
	if hi == "" {
		return bad("the range has no end port; write START-END, like 3000-3003")
	}
	b, err := parsePort(hi)
	if err != nil {
		return bad(err.Error())
	}
	if a > b {
		return bad(fmt.Sprintf("the range is reversed: start %d is greater than end %d", a, b))
	}
	return Spec{Kind: kind, Start: a, End: b}, nil
}

func parsePort(s string) (int, error) {
	if s == "" {
		return 0, fmt.Errorf("a port number is missing")
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("%q is not a port number", s)
		}
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 65535 {
		return 0, fmt.Errorf("port %s is out of range (1-65535)", s)
	}
	return n, nil
}

// Size is how many ports the spec spans.
func (s Spec) Size() int { return s.End - s.Start + 1 }

func (s Spec) String() string {
	switch s.Kind {
	case Single:
		return strconv.Itoa(s.Start)
	case Auto:
		return fmt.Sprintf("auto:%d-%d", s.Start, s.End)
	default:
		return fmt.Sprintf("%d-%d", s.Start, s.End)
	}
}

// CheckInstances reports specs that can never serve n instances, before anything is probed.
func (s Spec) CheckInstances(n int) error {
	switch s.Kind {
	case Single:
		if n > 1 {
			return fmt.Errorf("port %d is a single port but %d instances were requested; use a range like %d-%d or auto:%d-%d",
				s.Start, n, s.Start, min(s.Start+n-1, 65535), s.Start, min(s.Start+100, 65535))
		}
	case Range:
		if s.Size() < n {
			return fmt.Errorf("Port range %d-%d has only %d ports but %d instances requested", s.Start, s.End, s.Size(), n)
		}
	case Auto:
		if s.Size() < n {
			return fmt.Errorf("Port range auto:%d-%d has only %d ports but %d instances requested", s.Start, s.End, s.Size(), n)
		}
	}
	return nil
}
