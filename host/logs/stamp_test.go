package logs

import (
	"bytes"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"
)

// chunks is a reader that returns its pieces one Read at a time, as a pipe does writes.
type chunks []string

func (c *chunks) Read(p []byte) (int, error) {
	if len(*c) == 0 {
		return 0, io.EOF
	}
	n := copy(p, (*c)[0])
	(*c)[0] = (*c)[0][n:]
	if (*c)[0] == "" {
		*c = (*c)[1:]
	}
	return n, nil
}

func TestWriterCopy(t *testing.T) {
	at := time.Date(2024, 3, 7, 9, 4, 5, 678_000_000, time.FixedZone("", 3600))
	layout := "2006-01-02T15:04:05.000-07:00"
	long := strings.Repeat("x", MaxLine+10)
	tests := []struct {
		name   string
		cfg    WriterConfig
		stream string
		in     []string
		want   string
	}{
		{"raw lines as they came", WriterConfig{}, "out", []string{"a\nb", "c\n", "d"}, "a\nbc\nd\n"},
		{"stamped", WriterConfig{Layout: layout}, "out", []string{"one\ntwo\n"},
			"2024-03-07T09:04:05.678+01:00: one\n2024-03-07T09:04:05.678+01:00: two\n"},
		{"a line split across reads is stamped once, whole", WriterConfig{Layout: "15:04"}, "err", []string{"par", "tial\n"},
			"09:04: partial\n"},
		{"an empty line is a line", WriterConfig{Layout: "15:04"}, "out", []string{"\n"}, "09:04: \n"},
		{"json as PM2 writes it", WriterConfig{JSON: true, Layout: "2006-01-02T15:04:05.000Z07:00", UTC: true, ID: 3, App: "web"}, "err",
			[]string{"<b> & \"q\"\n"},
			`{"message":"<b> & \"q\"\n","timestamp":"2024-03-07T08:04:05.678Z","type":"err","process_id":3,"app_name":"web"}` + "\n"},
		{"a line over MaxLine is cut", WriterConfig{}, "out", []string{long + "\n"}, long[:MaxLine] + "\n" + long[MaxLine:] + "\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := &Writer{Config: tc.cfg, Now: func() time.Time { return at }}
			var a, b bytes.Buffer
			in := chunks(tc.in)
			w.Copy(&in, tc.stream, &a, &b)
			if a.String() != tc.want || b.String() != tc.want {
				t.Errorf("wrote\n%q\nand\n%q\nwant\n%q", a.String(), b.String(), tc.want)
			}
		})
	}
}

// A JSON line has PM2's fields and nothing else.
func TestWriterJSONShape(t *testing.T) {
	w := &Writer{Config: WriterConfig{JSON: true, Layout: time.RFC3339, ID: 7, App: "api"}, Now: time.Now}
	var out bytes.Buffer
	in := chunks{"hello\n"}
	w.Copy(&in, "out", &out)
	var m map[string]any
	if err := json.Unmarshal(out.Bytes(), &m); err != nil {
		t.Fatalf("%q: %v", out.String(), err)
	}
	if len(m) != 5 || m["message"] != "hello\n" || m["type"] != "out" || m["process_id"] != 7.0 || m["app_name"] != "api" {
		t.Errorf("line %v", m)
	}
	if _, err := time.Parse(time.RFC3339, m["timestamp"].(string)); err != nil {
		t.Errorf("timestamp: %v", err)
	}
}
