package api

import (
	"strings"
	"syscall"
	"testing"
)

// A signal is accepted as PM2 users write it (SIGUSR1, USR1, usr1, 10) and always comes back
// under its canonical name; anything else is refused with what was given.
func TestParseSignal(t *testing.T) {
	tests := []struct {
		in      string
		name    string
		sig     syscall.Signal
		wantErr string
	}{
		{in: "SIGUSR1", name: "SIGUSR1", sig: syscall.SIGUSR1},
		{in: "USR1", name: "SIGUSR1", sig: syscall.SIGUSR1},
		{in: "usr1", name: "SIGUSR1", sig: syscall.SIGUSR1},
		{in: "10", name: "SIGUSR1", sig: syscall.SIGUSR1},
		{in: "sighup", name: "SIGHUP", sig: syscall.SIGHUP},
		{in: "15", name: "SIGTERM", sig: syscall.SIGTERM},
		{in: "40", name: "SIG40", sig: syscall.Signal(40)},
		{in: "", wantErr: "no signal given"},
		{in: "SIGFOO", wantErr: `signal "SIGFOO" is unknown`},
		{in: "0", wantErr: `signal "0" is not a signal number (1-64)`},
		{in: "65", wantErr: `signal "65" is not a signal number (1-64)`},
		{in: "-9", wantErr: `signal "-9" is not a signal number`},
		{in: " USR1", wantErr: `signal " USR1" is unknown`},
	}
	for _, tt := range tests {
		name, sig, err := ParseSignal(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseSignal(%q) = %s, %v, %v; want an error saying %s", tt.in, name, sig, err, tt.wantErr)
			}
			continue
		}
		if err != nil || name != tt.name || sig != tt.sig {
			t.Errorf("ParseSignal(%q) = %s, %v, %v; want %s, %v", tt.in, name, sig, err, tt.name, tt.sig)
		}
	}
}
