package api

import (
	"bufio"
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A daemon that takes a request and closes the connection without a whole answer (it crashed,
// or was killed) is reported as such, naming the request and the daemon's log, not as
// `daemon: Post "http://pmdaemon/v1/start": EOF`.
func TestDaemonStoppedMidRequest(t *testing.T) {
	tests := []struct {
		name   string
		answer string // what the server writes before it closes the connection
		log    bool   // whether daemon.log exists beside the socket
		call   func(*Client) error
		want   string
	}{
		{"nothing", "", true, func(c *Client) error { _, err := c.Start(context.Background(), StartRequest{}); return err },
			"the daemon stopped while handling start (it may have crashed: see DIR/daemon.log); run 'pmdaemon list' to see what is running"},
		{"half an answer", "HTTP/1.1 200 OK\r\nContent-Length: 100\r\nContent-Type: application/json\r\n\r\n{\"apps\":", true,
			func(c *Client) error {
				_, err := c.Restart(context.Background(), TargetRequest{Target: "all"})
				return err
			},
			"the daemon stopped while handling restart (it may have crashed: see DIR/daemon.log)"},
		{"headers cut", "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n", true,
			func(c *Client) error { _, err := c.StartMany(context.Background(), StartManyRequest{}); return err },
			"the daemon stopped while handling start (it may have crashed: see DIR/daemon.log)"},
		{"no log file", "", false, func(c *Client) error { _, err := c.AddPlugin(context.Background(), PluginAddRequest{}); return err },
			"the daemon stopped while handling plugins add (it may have crashed: see the daemon's log)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if tt.log {
				if err := os.WriteFile(filepath.Join(dir, "daemon.log"), nil, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			sock := filepath.Join(dir, "daemon.sock")
			l, err := net.Listen("unix", sock)
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			served := make(chan struct{})
			go func() {
				defer close(served)
				conn, err := l.Accept()
				if err != nil {
					return
				}
				defer conn.Close()
				if _, err := http.ReadRequest(bufio.NewReader(conn)); err != nil {
					return
				}
				conn.Write([]byte(tt.answer))
			}()
			err = tt.call(NewClient(sock))
			<-served
			var stopped *StoppedError
			if !errors.As(err, &stopped) {
				t.Fatalf("error %v (%T), want a StoppedError", err, err)
			}
			if want := strings.ReplaceAll(tt.want, "DIR", dir); !strings.Contains(err.Error(), want) {
				t.Errorf("error %q\nwant %q", err, want)
			}
			if strings.Contains(err.Error(), "EOF") || strings.Contains(err.Error(), "http://") {
				t.Errorf("error %q shows the transport's words", err)
			}
		})
	}
}

// A request the caller gave up on (its context ended) is not mistaken for a daemon that
// stopped, and no socket is not either.
func TestDaemonStoppedOnlyWhenItWas(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "daemon.sock")
	if _, err := NewClient(sock).List(context.Background()); !errors.Is(err, ErrNoDaemon) {
		t.Errorf("no socket: %v, want ErrNoDaemon", err)
	}
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		conn, err := l.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		http.ReadRequest(bufio.NewReader(conn))
		buf := make([]byte, 1)
		conn.Read(buf) // until the client goes away
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err = NewClient(sock).List(ctx)
	var stopped *StoppedError
	if err == nil || errors.As(err, &stopped) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("timed-out request: %v, want the deadline, not a StoppedError", err)
	}
	<-done
}
