package daemon

import (
	"fmt"
	"strings"
	"testing"

	"github.com/pmdaemon/pmdaemon/host/config"
	"github.com/pmdaemon/pmdaemon/host/supervisor"
)

// The budget check accepts instances up to what the open-file limit leaves for them and
// refuses one more, saying what the number it gives counts.
func TestCheckBudgetNamesTheDescriptorsLeft(t *testing.T) {
	budget, limit := fdBudget()
	if budget <= 0 || budget == int(^uint(0)>>1) {
		t.Skipf("open-file limit %d leaves no finite budget to test against", limit)
	}
	tests := []struct {
		name      string
		instances int
		want      []string // nil: accepted
	}{
		{name: "at the budget", instances: budget},
		{name: "one over", instances: budget + 1, want: []string{
			fmt.Sprintf("holding %d file descriptors", budget+1),
			fmt.Sprintf("open-file limit of %d (RLIMIT_NOFILE)", limit),
			fmt.Sprintf("leaves for instances: at most %d descriptors, after %d for itself", budget, fdReserve+supervisor.InFlightFDs),
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := &Daemon{apps: map[string]*app{}}
			err := d.checkBudget(map[string]appUse{"big": {instances: tt.instances, cfg: &config.App{}}})
			if tt.want == nil {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}
