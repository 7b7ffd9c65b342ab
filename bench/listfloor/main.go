// Command listfloor is the floor `pmdaemon list --json` is measured against: the least a Go
// client can do for the same answer. It asks the daemon of $PMDAEMON_HOME (default
// ~/.pmdaemon) for GET /v1/list over its unix socket with net/http and copies the JSON body to
// stdout. It links nothing of pmdaemon, so its whole-process time is the runtime's start-up,
// one request and the daemon's answer.
package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "Error: %v\n", err)
		os.Exit(1)
	}
}

func run() error {
	home := os.Getenv("PMDAEMON_HOME")
	if home == "" {
		h, err := os.UserHomeDir()
		if err != nil {
			return fmt.Errorf("PMDAEMON_HOME is unset and there is no home directory: %w", err)
		}
		home = filepath.Join(h, ".pmdaemon")
	}
	socket := filepath.Join(home, "daemon.sock")
	client := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		},
	}}
	resp, err := client.Get("http://pmdaemon/v1/list")
	if err != nil {
		return fmt.Errorf("GET /v1/list on %s: %w", socket, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("GET /v1/list on %s: %s: %s", socket, resp.Status, b)
	}
	_, err = io.Copy(os.Stdout, resp.Body)
	return err
}
