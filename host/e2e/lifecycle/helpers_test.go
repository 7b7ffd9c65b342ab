package lifecycle

import (
	"github.com/pmdaemon/pmdaemon/host/api"
)

// pidsOf returns the pids of rows.
func pidsOf(rows []api.Instance) []int {
	var out []int
	for _, r := range rows {
		out = append(out, r.Pid)
	}
	return out
}
