// Command echo is the demo app of the examples: an HTTP server on $PORT that answers with who
// it is (app, instance, port, pid), so you can see pmdaemon's port distribution at work.
//
// Started with a socket (pmdaemon start --socket), it serves on the listener the daemon hands
// over as fd 3 (systemd's LISTEN_FDS protocol) instead of binding $PORT itself. With
// NOTIFY_READY=1 it tells the daemon it is ready over $NOTIFY_SOCKET once it serves, with
// NOTIFY_STATUS=text it also sends that status line, with NOTIFY_WATCHDOG_EVERY=duration it
// sends WATCHDOG=1 that often (the daemon's watchdog restarts it when the pings stop), and
// IGNORE_LISTEN_FDS=1 makes it bind
// $PORT even when it was given a socket (an app that does not know the protocol).
package main

import (
	"encoding/json"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	host := os.Getenv("HOST")
	if host == "" {
		host = "127.0.0.1"
	}
	who := map[string]any{
		"app":      os.Getenv("PMDAEMON_APP_NAME"),
		"instance": os.Getenv("PM2_INSTANCE_ID"),
		"port":     port,
		"pid":      os.Getpid(),
	}
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(who)
	})
	// /health answers 503 while the file HEALTH_FAIL_FILE names exists: tests flip an instance
	// to unhealthy without touching it.
	http.HandleFunc("/health", func(w http.ResponseWriter, r *http.Request) {
		if f := os.Getenv("HEALTH_FAIL_FILE"); f != "" {
			if _, err := os.Stat(f); err == nil {
				http.Error(w, "unhealthy: "+f+" exists", http.StatusServiceUnavailable)
				return
			}
		}
		fmt.Fprintln(w, "ok")
	})
	http.HandleFunc("/env", func(w http.ResponseWriter, r *http.Request) {
		v := os.Getenv(r.URL.Query().Get("name"))
		fmt.Fprint(w, v)
	})
	// START_DELAY makes it slow to start listening, like an app that warms a cache first.
	if d, err := time.ParseDuration(os.Getenv("START_DELAY")); err == nil {
		time.Sleep(d)
	}
	ln, how, err := listener(host, port)
	if err != nil {
		log.Fatal(err)
	}
	busy := &busyConns{m: map[net.Conn]bool{}}
	srv := &http.Server{ConnState: busy.track}
	var stopping atomic.Bool
	go func() {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
		<-sig
		// Finish the requests in flight, then go: a reload loses none of them. Not with
		// srv.Shutdown alone: it drops a request that it reads after shutdown began, and on a
		// socket shared with other instances, or held by the daemon, connections accepted just
		// before are common. So: stop accepting here (the socket stays open for the others);
		// main does the rest once Serve has returned.
		stopping.Store(true)
		srv.SetKeepAlivesEnabled(false)
		ln.Close()
	}()
	log.Printf("instance %s of %s listening on %s", who["instance"], who["app"], how)
	if os.Getenv("NOTIFY_READY") == "1" {
		msg := "READY=1"
		if st := os.Getenv("NOTIFY_STATUS"); st != "" {
			msg += "\nSTATUS=" + st
		}
		if err := notify(msg); err != nil {
			log.Fatal(err)
		}
	}
	if d, err := time.ParseDuration(os.Getenv("NOTIFY_WATCHDOG_EVERY")); err == nil && d > 0 {
		go func() {
			for range time.Tick(d) {
				if err := notify("WATCHDOG=1"); err != nil {
					log.Print(err)
				}
			}
		}()
	}
	if err := srv.Serve(ln); err != nil && !stopping.Load() {
		log.Fatal(err)
	}
	// Serve has returned, so every connection it accepted is tracked (it marks one StateNew
	// before it accepts the next): let those that are not idle finish, then close the idle ones.
	busy.waitIdle(3 * time.Second)
	srv.Close()
}

// busyConns tracks the connections that are not idle: accepted (a request may be on its way)
// or serving one.
type busyConns struct {
	mu sync.Mutex
	m  map[net.Conn]bool
}

func (b *busyConns) track(c net.Conn, st http.ConnState) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if st == http.StateNew || st == http.StateActive {
		b.m[c] = true
	} else {
		delete(b.m, c)
	}
}

// waitIdle waits until no connection is busy, or for at most d.
func (b *busyConns) waitIdle(d time.Duration) {
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(5 * time.Millisecond) {
		b.mu.Lock()
		n := len(b.m)
		b.mu.Unlock()
		if n == 0 {
			return
		}
	}
}

// listener is the socket handed over as fd 3 when LISTEN_FDS says there is one and LISTEN_PID
// says it is meant for this process (a variable inherited from a parent is not), else host:port
// bound here. how says which, for the log.
func listener(host, port string) (net.Listener, string, error) {
	if os.Getenv("IGNORE_LISTEN_FDS") != "1" && os.Getenv("LISTEN_FDS") == "1" &&
		os.Getenv("LISTEN_PID") == strconv.Itoa(os.Getpid()) {
		f := os.NewFile(3, os.Getenv("LISTEN_FDNAMES"))
		ln, err := net.FileListener(f)
		f.Close() // FileListener holds its own duplicate
		if err != nil {
			return nil, "", fmt.Errorf("fd 3 from LISTEN_FDS: %w", err)
		}
		return ln, "fd 3 (" + ln.Addr().String() + ")", nil
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(host, port))
	if err != nil {
		return nil, "", err
	}
	return ln, ln.Addr().String(), nil
}

// notify sends one sd_notify datagram to $NOTIFY_SOCKET (a leading "@" names an abstract
// socket, which Go's unix addresses understand as they are).
func notify(msg string) error {
	addr := os.Getenv("NOTIFY_SOCKET")
	if addr == "" {
		return fmt.Errorf("NOTIFY_READY=1 but NOTIFY_SOCKET is not set")
	}
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		return fmt.Errorf("NOTIFY_SOCKET %s: %w", addr, err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(msg)); err != nil {
		return fmt.Errorf("NOTIFY_SOCKET %s: %w", addr, err)
	}
	return nil
}
