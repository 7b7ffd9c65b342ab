package state

import (
	"bufio"
	"encoding/json"
	"io"
	"slices"
	"strconv"
	"time"
)

// Writer writes a state file again and again, encoding only the apps that changed since its
// previous write: with thousands of apps, encoding every app on every write made each write
// cost in proportion to everything running, and the daemon writes after every change. The
// bytes it writes are exactly json.Marshal's (TestWriterWritesWhatMarshalWould). Not safe for
// concurrent use; the daemon has one writer at a time.
type Writer struct {
	path string
	// encoded is each app's JSON from the previous write, by name, with what it was made from.
	encoded map[string]*encodedApp
	writes  uint64 // numbers the writes, to find what the last one no longer had
	// out buffers the writes to the file: the whole file is not held in memory, which with
	// thousands of apps would be a megabyte kept between writes.
	out *bufio.Writer
}

// encodedApp is an app's JSON and what it was made from. It is only kept for an app whose
// config has a ConfigGen and that has no rollback record or held sockets (those are rare, and
// encoded every time).
type encodedApp struct {
	configGen    uint64
	portOverride string
	createdAt    time.Time
	instances    []Instance
	json         []byte
	written      uint64 // the number of the last write that had the app
}

// NewWriter writes the state file at path.
func NewWriter(path string) *Writer {
	return &Writer{path: path, encoded: map[string]*encodedApp{}, out: bufio.NewWriterSize(nil, 64<<10)}
}

// Write replaces the file with f, atomically (WriteAtomic). An app's config is encoded again
// only when its ConfigGen changed (or is 0); the rest of it is small.
func (w *Writer) Write(f *File) error {
	return writeAtomic(w.path, 0o600, func(file io.Writer) error {
		w.out.Reset(file)
		defer w.out.Reset(nil) // not to keep the file
		if err := w.encode(f, w.out); err != nil {
			return err
		}
		return w.out.Flush()
	})
}

// encode writes f's JSON, and a newline, to b; b's errors are left for its Flush.
func (w *Writer) encode(f *File, b *bufio.Writer) error {
	b.WriteString(`{"version":`)
	b.WriteString(strconv.Itoa(f.Version))
	b.WriteString(`,"next_id":`)
	b.WriteString(strconv.Itoa(f.NextID))
	b.WriteString(`,"apps":`)
	if f.Apps == nil {
		b.WriteString("null")
	} else {
		b.WriteByte('[')
		w.writes++
		for i := range f.Apps {
			if i > 0 {
				b.WriteByte(',')
			}
			js, err := w.app(&f.Apps[i])
			if err != nil {
				return err
			}
			b.Write(js)
		}
		b.WriteByte(']')
		for name, e := range w.encoded {
			if e.written != w.writes {
				delete(w.encoded, name) // a deleted app: its bytes are not kept
			}
		}
	}
	if len(f.Plugins) > 0 {
		js, err := json.Marshal(f.Plugins)
		if err != nil {
			return err
		}
		b.WriteString(`,"plugins":`)
		b.Write(js)
	}
	b.WriteString("}\n")
	return nil
}

// app is a's JSON: the previous write's when nothing it depends on changed.
func (w *Writer) app(a *App) ([]byte, error) {
	if a.Config == nil {
		return json.Marshal(a) // no name to keep it by (the daemon never writes one)
	}
	if a.ConfigGen == 0 || a.Rollback != nil || len(a.Sockets) > 0 {
		delete(w.encoded, a.Config.Name)
		return json.Marshal(a)
	}
	e, ok := w.encoded[a.Config.Name]
	if ok && e.configGen == a.ConfigGen && e.portOverride == a.PortOverride && e.createdAt == a.CreatedAt &&
		(e.instances == nil) == (a.Instances == nil) && slices.Equal(e.instances, a.Instances) {
		e.written = w.writes
		return e.json, nil
	}
	js, err := json.Marshal(a)
	if err != nil {
		return nil, err
	}
	w.encoded[a.Config.Name] = &encodedApp{configGen: a.ConfigGen, portOverride: a.PortOverride, createdAt: a.CreatedAt,
		instances: slices.Clone(a.Instances), json: js, written: w.writes}
	return js, nil
}
