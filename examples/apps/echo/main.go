// Command echo is the demo app of the examples: an HTTP server on $PORT that answers with who
// it is (app, instance, port, pid), so you can see pmdaemon's port distribution at work.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"net/http"
	"os"
	"os/signal"
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
	srv := &http.Server{Addr: host + ":" + port}
	go func() {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
		<-sig
		// Finish the requests in flight, then go: a reload loses none of them.
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	}()
	log.Printf("instance %s of %s listening on %s:%s", who["instance"], who["app"], host, port)
	if err := srv.ListenAndServe(); err != nil && err != http.ErrServerClosed {
		log.Fatal(err)
	}
}
