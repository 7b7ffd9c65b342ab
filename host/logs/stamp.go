package logs

// The log writer: what sits between an app and its log files when the app's lines are to be
// stamped with the time they were written (PM2's time, log_date_format), written as JSON
// objects (log_type "json") or copied into a combined log (log_file). Other apps write
// straight into their files (see rotate.go).
//
// It is a small process of its own (the pmdaemon binary run as `pmdaemon __log-writer`), not a
// goroutine of the daemon, so that the contract of DESIGN §7 holds for these apps too: their
// output keeps landing in their files while the daemon is down or being replaced. It reads the
// app's stdout and stderr from two pipes and exits once both are closed by every process that
// held them (the app and its children are gone) and what they wrote is in the files; it
// ignores SIGTERM, SIGINT and SIGHUP so that nothing but the end of its input stops it, and
// runs in its own process group outside the instance's cgroup, so a kill of the instance never
// takes lines still in the pipe with it.
//
// Each line is written to each of its files with one write(2) on an O_APPEND descriptor, so
// lines of several writers sharing a file (instances of a merge_logs app, out and err in
// log_file) never interleave mid-line. A line longer than MaxLine is cut into lines of MaxLine
// bytes; an unterminated last line is written, ended, at the end of the input.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"
)

// WriterArg is the first argument that makes the pmdaemon binary run as a log writer.
const WriterArg = "__log-writer"

// MaxLine is the longest line the writer keeps whole.
const MaxLine = 64 << 10

// WriterConfig is what a log writer does with lines.
type WriterConfig struct {
	// Layout is the Go layout lines are stamped with; "" writes raw lines as they came.
	Layout string `json:"layout,omitempty"`
	// UTC formats the stamps in UTC (PM2's JSON timestamps without log_date_format).
	UTC bool `json:"utc,omitempty"`
	// JSON writes each line as PM2's object; ID and App fill its process_id and app_name.
	JSON bool   `json:"json,omitempty"`
	ID   int    `json:"id"`
	App  string `json:"app"`
	// Combined: a third file takes every line of both streams.
	Combined bool `json:"combined,omitempty"`
}

// The writer's descriptors, as the supervisor passes them (ExtraFiles).
const (
	fdOutPipe = 3 + iota
	fdErrPipe
	fdOutFile
	fdErrFile
	fdCombined
)

// jsonLine is one line as PM2's log_type "json" writes it, fields in PM2's order.
type jsonLine struct {
	Message   string `json:"message"`
	Timestamp string `json:"timestamp"`
	Type      string `json:"type"`
	ProcessID int    `json:"process_id"`
	AppName   string `json:"app_name"`
}

// RunWriter is the log writer process: args[0] is its WriterConfig as JSON; its descriptors
// are the pipes and files above. It returns the exit code.
func RunWriter(args []string) int {
	signal.Ignore(syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGPIPE)
	if len(args) != 1 {
		fmt.Fprintln(os.Stderr, "pmdaemon log writer: want one argument, its configuration")
		return 2
	}
	var cfg WriterConfig
	if err := json.Unmarshal([]byte(args[0]), &cfg); err != nil {
		fmt.Fprintf(os.Stderr, "pmdaemon log writer: bad configuration: %v\n", err)
		return 2
	}
	file := func(fd int, name string) *lockedFile {
		return &lockedFile{w: os.NewFile(uintptr(fd), name)}
	}
	out, errf := file(fdOutFile, "out"), file(fdErrFile, "err")
	var combined *lockedFile
	if cfg.Combined {
		combined = file(fdCombined, "log_file")
	}
	w := &Writer{Config: cfg, Now: time.Now}
	var wg sync.WaitGroup
	for _, s := range []struct {
		fd     int
		stream string
		to     *lockedFile
	}{{fdOutPipe, "out", out}, {fdErrPipe, "err", errf}} {
		dsts := []io.Writer{s.to}
		if combined != nil {
			dsts = append(dsts, combined)
		}
		wg.Go(func() { w.Copy(os.NewFile(uintptr(s.fd), s.stream), s.stream, dsts...) })
	}
	wg.Wait()
	return 0
}

// lockedFile is a file the writer's two streams may both write (log_file, or out_file and
// error_file naming one file): one write at a time from this process.
type lockedFile struct {
	mu sync.Mutex
	w  io.Writer
}

func (f *lockedFile) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.w.Write(p)
}

// Writer turns what an app writes into log lines.
type Writer struct {
	Config WriterConfig
	Now    func() time.Time
}

// Copy reads src to its end and writes its lines (stamped, or as JSON) to each of dsts;
// stream is "out" or "err". Every complete line read in one go shares one time stamp, taken
// when the read returned, and goes to each file in one write. A write that fails is given up
// (the disk is full, the file was removed): the lines are dropped for that file only, and
// reading goes on, so the app never blocks on a full pipe.
func (w *Writer) Copy(src io.Reader, stream string, dsts ...io.Writer) {
	buf := make([]byte, MaxLine)
	var pending []byte
	var batch bytes.Buffer
	flush := func() {
		if batch.Len() == 0 {
			return
		}
		for _, d := range dsts {
			d.Write(batch.Bytes())
		}
		batch.Reset()
	}
	for {
		n, err := src.Read(buf)
		if n > 0 {
			now := w.Now()
			pending = append(pending, buf[:n]...)
			for {
				i := bytes.IndexByte(pending, '\n')
				switch {
				case i >= 0 && i <= MaxLine:
					w.format(&batch, pending[:i], stream, now)
					pending = pending[i+1:]
					continue
				case len(pending) >= MaxLine:
					w.format(&batch, pending[:MaxLine], stream, now)
					pending = pending[MaxLine:]
					continue
				}
				break
			}
			pending = append(pending[:0:0], pending...)
			flush()
		}
		if err != nil {
			if len(pending) > 0 {
				w.format(&batch, pending, stream, w.Now())
				flush()
			}
			return
		}
	}
}

// format appends line, as the configuration says, and a newline to b.
func (w *Writer) format(b *bytes.Buffer, line []byte, stream string, t time.Time) {
	c := w.Config
	if c.UTC {
		t = t.UTC()
	}
	if c.JSON {
		// As JavaScript's JSON.stringify: <, > and & as they are. Encode ends the object with
		// the line's newline.
		enc := json.NewEncoder(b)
		enc.SetEscapeHTML(false)
		enc.Encode(jsonLine{Message: string(line) + "\n", Timestamp: t.Format(c.Layout), Type: stream,
			ProcessID: c.ID, AppName: c.App})
		return
	}
	if c.Layout != "" {
		b.WriteString(t.Format(c.Layout))
		b.WriteString(": ")
	}
	b.Write(line)
	b.WriteByte('\n')
}
