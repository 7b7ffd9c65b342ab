package cli

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"strings"
	"testing"
	"unicode"

	"github.com/olekukonko/tablewriter"
	"github.com/olekukonko/tablewriter/renderer"
	"github.com/olekukonko/tablewriter/tw"
	"github.com/pmdaemon/pmdaemon/host/api"
)

// tablewriterDraw is how pmdaemon drew its tables with tablewriter, before table.go: the
// reference the tests hold table to. tablewriter is a test dependency only.
func tablewriterDraw(header []string, rows [][]string) string {
	var b bytes.Buffer
	t := tablewriter.NewTable(&b,
		tablewriter.WithRenderer(renderer.NewBlueprint(tw.Rendition{Symbols: tw.NewSymbols(tw.StyleLight)})),
		tablewriter.WithHeaderAutoFormat(tw.Off),
		tablewriter.WithRowAutoWrap(tw.WrapNone),
	)
	h := make([]any, len(header))
	for i, x := range header {
		h[i] = x
	}
	t.Header(h...)
	for _, r := range rows {
		t.Append(r)
	}
	t.Render()
	return b.String()
}

func ourDraw(header []string, rows [][]string) string {
	var b bytes.Buffer
	t := newTable(&b)
	t.Header(header...)
	for _, r := range rows {
		t.Append(r)
	}
	t.Render()
	return b.String()
}

// The tables pmdaemon prints, and tables of random text, are drawn byte for byte as
// tablewriter drew them: the listing people and scripts read did not change.
func TestTableDrawsAsTablewriter(t *testing.T) {
	tests := []struct {
		name   string
		header []string
		rows   [][]string
	}{
		{"list, no rows", ListHeader, nil},
		{"list", ListHeader, [][]string{
			{"0", "api-gateway", "online", "4382", "8080", "0.0", "3.9 MB", "0s", "0"},
			{"1", "user-service", "🟢 Online", "4384", "8001", "12.5", "7.2 MB", "3m", "12"},
			{"12", "a", "🔴 Errored (unhealthy)", "-", "-", "0.0", "0 B", "-", "15"},
		}},
		{"plan with a multi-line command", []string{"Name", "Command", "Instances", "Port", "Cwd"}, [][]string{
			{"web", "sh -c 'echo a\necho b'", "4", "3000-3003", "/srv/web"},
			{"w", "", "1", "-", ""},
		}},
		{"plugins", []string{"Name", "Kind", "Path", "SHA256", "Status"}, [][]string{
			{"reserved-range", "allocator", "/usr/local/bin/reserved-range", "0123456789ab", "running"},
		}},
		{"short and long rows", []string{"A", "B", "C"}, [][]string{{"x"}, {"1", "2", "3", "4"}, {}}},
		{"padded cells", []string{"A", "B"}, [][]string{{"  lead", "trail  "}, {" both ", "é"}, {"中文", "ｆｕｌｌ"}}},
		{"blank lines around a cell's text", []string{"Name"}, [][]string{{"\n a \n\n b\n\n"}, {"", ""}}},
		{"no header", nil, [][]string{{"a", "b"}, {"c"}}},
		{"empty header", []string{}, [][]string{{"a"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, want := ourDraw(tt.header, tt.rows), tablewriterDraw(tt.header, tt.rows); got != want {
				t.Errorf("drawn:\n%s\ntablewriter drew:\n%s", got, want)
			}
		})
	}

	alphabet := []rune("abcXYZ019 -_./:()%é中文🟢🔴⚪ｆ\n")
	rng := rand.New(rand.NewPCG(1, 2))
	word := func() string {
		n := rng.IntN(12)
		rs := make([]rune, n)
		for i := range rs {
			rs[i] = alphabet[rng.IntN(len(alphabet))]
		}
		return string(rs)
	}
	for i := 0; i < 2000; i++ {
		header := make([]string, 1+rng.IntN(6))
		for j := range header {
			header[j] = strings.ReplaceAll(word(), "\n", "")
		}
		rows := make([][]string, rng.IntN(5))
		for j := range rows {
			rows[j] = make([]string, rng.IntN(len(header)+2))
			for k := range rows[j] {
				rows[j][k] = word()
			}
		}
		if got, want := ourDraw(header, rows), tablewriterDraw(header, rows); got != want {
			t.Fatalf("header %q rows %q drawn:\n%s\ntablewriter drew:\n%s", header, rows, got, want)
		}
	}
}

// Control characters in a cell (from a command line, a path, an app's status text) are shown
// escaped, never sent to the terminal, and the lines stay aligned.
func TestTableEscapesControlCharacters(t *testing.T) {
	out := ourDraw([]string{"Name", "Cwd"}, [][]string{
		{"web", "/srv/\x1b[31mred\x1b[0m"},
		{"t\tab", "bell\a\x00"},
		{"bad\xffutf8", "c1\u009b"},
		{"crlf", "line\r\nbreak\rcr"},
	})
	for _, want := range []string{`/srv/\x1b[31mred\x1b[0m`, `t\tab`, `bell\a\x00`, `bad\xffutf8`, `c1\u009b`, `break\rcr`} {
		if !strings.Contains(out, want) {
			t.Errorf("table does not show %q:\n%s", want, out)
		}
	}
	if strings.ContainsFunc(out, func(r rune) bool { return r != '\n' && unicode.IsControl(r) }) {
		t.Errorf("table sends control characters:\n%q", out)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	for _, l := range lines {
		if textWidth(l) != textWidth(lines[0]) {
			t.Errorf("line %q is %d wide, the top %d", l, textWidth(l), textWidth(lines[0]))
		}
	}
}

// FuzzTable: any cells draw a table whose lines are equally wide and carry no control
// character; printable cells draw as tablewriter drew them.
func FuzzTable(f *testing.F) {
	f.Add("ID", "Name", "0", "web\nx", "🟢 Online")
	f.Add("", "", "", "", "")
	f.Add("a\tb", "\x1b[1m", "\xff", " x ", "中")
	f.Fuzz(func(t *testing.T, h1, h2, c1, c2, c3 string) {
		header, rows := []string{h1, h2}, [][]string{{c1, c2}, {c3}}
		out := ourDraw(header, rows)
		lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
		for _, l := range lines {
			if textWidth(l) != textWidth(lines[0]) {
				t.Fatalf("ragged table for %q %q:\n%s", header, rows, out)
			}
		}
		if strings.ContainsFunc(out, func(r rune) bool { return r != '\n' && unicode.IsControl(r) }) {
			t.Fatalf("control character in %q", out)
		}
		plain := func(s string) bool {
			return !strings.ContainsFunc(s, func(r rune) bool {
				return unicode.IsControl(r) && r != '\n' || r == 0xFFFD || r >= 0x80 && !unicode.IsPrint(r) || unicode.Is(unicode.Mn, r) || r > 0xFFFF
			}) && !strings.ContainsAny(h1+h2, "\n") && strings.ToValidUTF8(s, "") == s
		}
		if plain(h1) && plain(h2) && plain(c1) && plain(c2) && plain(c3) {
			if want := tablewriterDraw(header, rows); out != want {
				t.Fatalf("header %q rows %q drawn:\n%s\ntablewriter drew:\n%s", header, rows, out, want)
			}
		}
	})
}

// list --json passes the daemon's JSON through, and prints what decoding it and encoding it
// again printed before (one newline at the end, HTML characters escaped alike).
func TestRawJSONAsDecodedAndEncoded(t *testing.T) {
	rows := []api.Instance{{ID: 1, Name: "a<b&c"}, {ID: 2, Name: "é"}}
	var body, before, now, compact bytes.Buffer
	json.NewEncoder(&body).Encode(rows) // as the daemon answers
	writeJSON(&before, rows)
	if err := writeRawJSON(&now, body.Bytes(), true); err != nil {
		t.Fatal(err)
	}
	if now.String() != before.String() {
		t.Errorf("passed through:\n%q\ndecoded and encoded:\n%q", now.String(), before.String())
	}
	if err := writeRawJSON(&compact, body.Bytes(), false); err != nil {
		t.Fatal(err)
	}
	if compact.String() != body.String() {
		t.Errorf("compact: %q, want %q", compact.String(), body.String())
	}
	if err := writeRawJSON(&now, []byte(`[{"id": 1,`), true); err == nil || !strings.Contains(err.Error(), "daemon: bad answer") {
		t.Errorf("a cut answer: %v, want 'daemon: bad answer'", err)
	}
}
