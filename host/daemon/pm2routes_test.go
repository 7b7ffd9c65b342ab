package daemon

import (
	"context"
	"strings"
	"testing"

	"github.com/pmdaemon/pmdaemon/host/api"
)

// The new routes check their requests where they enter the daemon: every bad request is
// refused with its code and a message naming what is wrong, before any operation runs.
func TestPM2RoutesCheckRequests(t *testing.T) {
	_, c := testServer(t, &control{kill: func() {}})
	ctx := context.Background()
	tests := []struct {
		name string
		call func() error
		code api.Code
		want string
	}{
		{"env of a name", func() error { _, err := c.Env(ctx, "web"); return err }, api.CodeInvalid, `env takes an instance id (a number from pmdaemon list), got "web"`},
		{"env of nothing", func() error { _, err := c.Env(ctx, ""); return err }, api.CodeInvalid, `got ""`},
		{"env of a huge id", func() error { _, err := c.Env(ctx, "12345678901234567890"); return err }, api.CodeInvalid, "env takes an instance id"},
		{"env of an unknown id", func() error { _, err := c.Env(ctx, "42"); return err }, api.CodeNotFound, "instance '42' not found"},
		{"signal unknown", func() error {
			_, err := c.Signal(ctx, api.SignalRequest{Target: "web", Signal: "SIGNOPE"})
			return err
		}, api.CodeInvalid, `signal "SIGNOPE" is unknown`},
		{"signal without target", func() error {
			_, err := c.Signal(ctx, api.SignalRequest{Signal: "USR1"})
			return err
		}, api.CodeInvalid, "no target given"},
		{"signal to nothing", func() error {
			_, err := c.Signal(ctx, api.SignalRequest{Target: "web", Signal: "USR1"})
			return err
		}, api.CodeNotFound, "process 'web' not found"},
		{"reset with an override", func() error {
			_, err := c.Reset(ctx, api.TargetRequest{Target: "web", Port: "3000"})
			return err
		}, api.CodeInvalid, "reset takes only a target"},
		{"reset of nothing", func() error { _, err := c.Reset(ctx, api.TargetRequest{Target: "web"}); return err }, api.CodeNotFound, "process 'web' not found"},
		{"scale to 0", func() error { _, err := c.Scale(ctx, api.ScaleRequest{Name: "web"}); return err }, api.CodeInvalid, "instances must be between 1 and 1024, got 0"},
		{"scale past the limit", func() error {
			_, err := c.Scale(ctx, api.ScaleRequest{Name: "web", Instances: 1025})
			return err
		}, api.CodeInvalid, "got 1025"},
		{"scale without a name", func() error {
			_, err := c.Scale(ctx, api.ScaleRequest{Instances: 2})
			return err
		}, api.CodeInvalid, "no app given"},
		{"scale of nothing", func() error {
			_, err := c.Scale(ctx, api.ScaleRequest{Name: "web", Instances: 2})
			return err
		}, api.CodeNotFound, "process 'web' not found"},
	}
	for _, tt := range tests {
		err := tt.call()
		if api.ErrorCode(err) != tt.code || err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v (code %q); want %s saying %q", tt.name, err, api.ErrorCode(err), tt.code, tt.want)
		}
	}
}
