package ports

import (
	"errors"
	"fmt"
)

// Request asks for ports for the instances of one app.
type Request struct {
	App       string
	Instances int
	Spec      Spec
}

// Candidates returns the ports of an auto spec that are free in the registry (or held by the
// requesting app itself) and on the OS, ascending, stopping once limit are found (limit <= 0:
// all). Ports the app already holds skip the OS check: its own instances may be bound to them.
// Ports in use, and ports this user may not bind (ErrPrivileged), are skipped.
func Candidates(req Request, reg *Registry, prober Prober, limit int) ([]int, error) {
	out, _, err := candidates(req, reg, prober, limit)
	return out, err
}

// candidates is Candidates that also counts the ports skipped because they need privileges.
func candidates(req Request, reg *Registry, prober Prober, limit int) (out []int, privileged int, err error) {
	for p := req.Spec.Start; p <= req.Spec.End; p++ {
		if holder, ok := reg.Holder(p); ok {
			if holder == req.App {
				out = append(out, p)
			} else {
				continue
			}
		} else {
			err := prober.Probe(p)
			if errors.Is(err, ErrInUse) {
				continue
			}
			if errors.Is(err, ErrPrivileged) {
				privileged++
				continue
			}
			if err != nil {
				return nil, 0, err
			}
			out = append(out, p)
		}
		if limit > 0 && len(out) == limit {
			break
		}
	}
	return out, privileged, nil
}

// Allocate picks ports for req without reserving them: the caller reserves the result in the
// same critical section. Errors are the spec's messages, word for word.
func Allocate(req Request, reg *Registry, prober Prober) ([]int, error) {
	return AllocateKeeping(req, nil, reg, prober)
}

// AllocateKeeping is Allocate for an app some of whose instances already hold ports under the
// same spec: instance i keeps keep[i] when it is non-zero, and only the others get new ports.
// A plain restart of an auto: app therefore never moves a running instance.
func AllocateKeeping(req Request, keep []int, reg *Registry, prober Prober) ([]int, error) {
	out, cands, err := Prepare(req, keep, reg, prober, 0)
	if err != nil {
		return nil, err
	}
	return Fill(req, out, cands)
}

// Prepare is the first half of AllocateKeeping, for callers that let policies choose among the
// candidates: out has the kept ports and 0 where a port is missing; cands are the ports that
// may fill the gaps: for a fixed spec exactly the missing ones (checked free, in order), for
// auto the free ports of the range not kept, ascending. For auto, limit bounds how many are
// looked for (0: just enough).
func Prepare(req Request, keep []int, reg *Registry, prober Prober, limit int) (out, cands []int, err error) {
	if err := req.Spec.CheckInstances(req.Instances); err != nil {
		return nil, nil, err
	}
	out = make([]int, req.Instances)
	used := map[int]bool{}
	missing := 0
	for i := range out {
		if i < len(keep) && keep[i] > 0 {
			out[i] = keep[i]
			used[keep[i]] = true
		} else {
			missing++
		}
	}
	if missing == 0 {
		return out, nil, nil
	}
	if req.Spec.Kind != Auto {
		for i := range out {
			if out[i] == 0 {
				cands = append(cands, req.Spec.Start+i)
			}
		}
		if err := CheckFixed(req.App, cands, reg, prober); err != nil {
			return nil, nil, err
		}
		return out, cands, nil
	}
	if limit < missing {
		limit = missing
	}
	all, privileged, err := candidates(req, reg, prober, limit+len(used))
	if err != nil {
		return nil, nil, err
	}
	for _, p := range all {
		if !used[p] {
			cands = append(cands, p)
		}
	}
	if len(cands) < missing {
		why := ""
		if privileged > 0 {
			why = fmt.Sprintf(" (%d port(s) of the range need privileges: ports below %d need root or CAP_NET_BIND_SERVICE)",
				privileged, unprivilegedStart())
		}
		return nil, nil, fmt.Errorf("Not enough free ports in auto:%d-%d: %d free, %d needed%s",
			req.Spec.Start, req.Spec.End, len(cands)+len(used), req.Instances, why)
	}
	return out, cands, nil
}

// Fill puts ports into the gaps of out, in order: for a fixed spec cands must be exactly the
// missing ports Prepare returned; for auto the lowest of cands are used.
func Fill(req Request, out, cands []int) ([]int, error) {
	missing := 0
	for _, p := range out {
		if p == 0 {
			missing++
		}
	}
	if len(cands) < missing {
		return nil, fmt.Errorf("Not enough free ports in %s: %d free, %d needed", req.Spec, len(cands), missing)
	}
	for i := range out {
		if out[i] == 0 {
			out[i], cands = cands[0], cands[1:]
		}
	}
	return out, nil
}

// CheckFixed verifies that each of the given ports is free for app: not held by another app and,
// unless app already holds it, not bound on the OS.
func CheckFixed(app string, ports []int, reg *Registry, prober Prober) error {
	for _, p := range ports {
		if holder, ok := reg.Holder(p); ok {
			if holder != app {
				return fmt.Errorf("Port %d is already assigned to process '%s'", p, holder)
			}
			continue
		}
		err := prober.Probe(p)
		if errors.Is(err, ErrInUse) {
			return fmt.Errorf("Port %d is already in use by another process", p)
		}
		if err != nil {
			return err
		}
	}
	return nil
}
