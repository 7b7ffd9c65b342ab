package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// OpenPTY opens a real pseudo-terminal and returns its terminal end (what a program's stdout
// is in an interactive shell) and the master end that reads what is written to it. Both are
// closed at the end of the test. Exported for the package's external tests.
func OpenPTY(t *testing.T) (tty, master *os.File) {
	t.Helper()
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("no pseudo-terminal to test with: %v", err)
	}
	t.Cleanup(func() { master.Close() })
	if err := unix.IoctlSetPointerInt(int(master.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatalf("unlocking the pty: %v", err)
	}
	n, err := unix.IoctlGetInt(int(master.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatalf("numbering the pty: %v", err)
	}
	tty, err = os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("opening the pty's terminal: %v", err)
	}
	t.Cleanup(func() { tty.Close() })
	return tty, master
}

// Colour and emoji only on a terminal, and never when NO_COLOR is set (to anything, empty
// included) or TERM is dumb: a pipe, a file or a buffer gets plain text whatever the
// environment says.
func TestFancyOutput(t *testing.T) {
	tty, _ := OpenPTY(t)
	r, pipe, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer pipe.Close()
	file, err := os.Create(filepath.Join(t.TempDir(), "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	tests := []struct {
		name string
		out  any
		env  map[string]string
		want bool
	}{
		{"terminal", tty, map[string]string{"TERM": "xterm-256color"}, true},
		{"terminal, no TERM", tty, nil, true},
		{"terminal, NO_COLOR=1", tty, map[string]string{"NO_COLOR": "1", "TERM": "xterm"}, false},
		{"terminal, NO_COLOR empty", tty, map[string]string{"NO_COLOR": ""}, false},
		{"terminal, TERM=dumb", tty, map[string]string{"TERM": "dumb"}, false},
		{"pipe", pipe, map[string]string{"TERM": "xterm"}, false},
		{"file", file, map[string]string{"TERM": "xterm"}, false},
		{"buffer", &bytes.Buffer{}, map[string]string{"TERM": "xterm"}, false},
	}
	for _, tt := range tests {
		lookup := func(k string) (string, bool) {
			v, ok := tt.env[k]
			return v, ok
		}
		w, _ := tt.out.(interface{ Write([]byte) (int, error) })
		if got := fancyOutput(w, lookup); got != tt.want {
			t.Errorf("%s: fancyOutput = %v, want %v", tt.name, got, tt.want)
		}
	}
}
