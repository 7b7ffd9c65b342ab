package config

import (
	"fmt"
	"strings"
	"testing"
)

func TestCheckName(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string // the whole error, or "" for a valid name
	}{
		{"plain", "web", ""},
		{"dashes and dots", "api-v2.internal_1", ""},
		{"inner space", "my app", ""},
		{"unicode letters", "café-サーバー", ""},
		{"number with letters", "3d", ""},
		{"starts with a digit and has a dot", "1.5", ""},
		{"all in capitals", "ALL", ""},
		{"all as part", "all-apps", ""},
		{"at the length limit", strings.Repeat("a", MaxNameLen), ""},

		{"empty", "", "app has no name"},
		{"leading space before all", " all", `app name " all" is not allowed: it has leading whitespace`},
		{"trailing space after all", "all ", `app name "all " is not allowed: it has trailing whitespace`},
		{"leading space before a number", " 3", `app name " 3" is not allowed: it has leading whitespace`},
		{"only spaces", "   ", `app name "   " is not allowed: it has leading whitespace`},
		{"leading tab", "\tweb", `app name "\tweb" is not allowed: it has leading whitespace`},
		{"trailing newline", "web\n", `app name "web\n" is not allowed: it has trailing whitespace`},
		{"trailing no-break space", "web\u00a0", `app name "web\u00a0" is not allowed: it has trailing whitespace`},
		{"leading ideographic space", "\u3000web", `app name "\u3000web" is not allowed: it has leading whitespace`},
		{"inner tab", "my\tapp", `app name "my\tapp" is not allowed: it contains the control character U+0009 (tab)`},
		{"inner newline", "my\napp", `app name "my\napp" is not allowed: it contains the control character U+000A (newline)`},
		{"inner carriage return", "a\rb", `app name "a\rb" is not allowed: it contains the control character U+000D (carriage return)`},
		{"NUL", "a\x00b", `app name "a\x00b" is not allowed: it contains the control character U+0000 (NUL)`},
		{"escape sequence", "a\x1b[31mred", `app name "a\x1b[31mred" is not allowed: it contains the control character U+001B (escape)`},
		{"DEL", "a\x7fb", `app name "a\x7fb" is not allowed: it contains the control character U+007F (DEL)`},
		{"C1 control", "a\u0085b", `app name "a\u0085b" is not allowed: it contains the control character U+0085`},
		{"zero-width space", "a\u200bb", `app name "a\u200bb" is not allowed: it contains the control character U+200B`},
		{"bidi override", "a\u202eb", `app name "a\u202eb" is not allowed: it contains the control character U+202E`},
		{"byte order mark", "\ufeffweb", `app name "\ufeffweb" is not allowed: it contains the control character U+FEFF`},
		{"line separator", "a\u2028b", `app name "a\u2028b" is not allowed: it contains the control character U+2028`},
		{"invalid UTF-8", "a\xffb", `app name "a\xffb" is not allowed: it is not valid UTF-8`},
		{"all", "all", `app name "all" is not allowed: "all" is the target of every app`},
		{"digits", "3", `app name "3" is not allowed: it is a number, which would be taken for an instance id`},
		{"long digits", "123456789012345678901234567890", `app name "123456789012345678901234567890" is not allowed: it is a number, which would be taken for an instance id`},
		{"signed number", "+3", `app name "+3" is not allowed: it is a number, which would be taken for an instance id`},
		{"negative number", "-1", `app name "-1" is not allowed: it is a number, which would be taken for an instance id`},
		{"slash", "a/b", `app name "a/b" is not allowed: it contains '/' (names are part of log file names)`},
		{"dot", ".", `app name "." is not allowed: it names a directory (names are part of log file names)`},
		{"dotdot", "..", `app name ".." is not allowed: it names a directory (names are part of log file names)`},
		{"over the length limit", strings.Repeat("a", MaxNameLen+1),
			`app name "` + strings.Repeat("a", 60) + `"... (101 bytes) is not allowed: it is 101 bytes long; the limit is 100`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckName(tt.in)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("CheckName(%q) = %v, want nil", tt.in, err)
				}
				return
			}
			if err == nil || err.Error() != tt.want {
				t.Fatalf("CheckName(%q) = %v\nwant %s", tt.in, err, tt.want)
			}
			// Every entry validates an App, so the same error comes out of Validate.
			a := NewApp()
			a.Name, a.Script = tt.in, "sleep 1"
			if verr := a.Validate(); verr == nil || verr.Error() != tt.want {
				t.Fatalf("Validate with name %q = %v\nwant %s", tt.in, verr, tt.want)
			}
		})
	}
}

// A JSON ecosystem file refuses a bad name with the file and the app's index, and refuses more
// apps than MaxApps.
func TestEcosystemNamesAndAppCap(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want []string
	}{
		{"trailing space", `{"apps": [{"name": "all ", "script": "w"}]}`,
			[]string{`eco.json: apps[0] ("all "):`, `app name "all " is not allowed: it has trailing whitespace`}},
		{"tab", `{"apps": [{"name": "a", "script": "w"}, {"name": "my\tapp", "script": "w"}]}`,
			[]string{`eco.json: apps[1] ("my\tapp"): app name "my\tapp" is not allowed: it contains the control character U+0009 (tab)`}},
		{"number", `{"name": "7", "script": "w"}`, []string{`app name "7" is not allowed`, "instance id"}},
		{"too many apps", appsDoc(MaxApps + 1), []string{`eco.json: "apps" has 1025 apps; a file may have at most 1024`}},
		{"too many instances", `{"name": "a", "script": "w", "instances": 20000}`,
			[]string{"eco.json: apps[0] (a)", `"instances"`, "too many (at most 1024)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseJSON([]byte(tt.doc), "eco.json", "/srv")
			if err == nil {
				t.Fatal("want an error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
	apps, err := ParseJSON([]byte(appsDoc(MaxApps)), "eco.json", "/srv")
	if err != nil || len(apps) != MaxApps {
		t.Fatalf("a file of exactly %d apps: %d apps, %v", MaxApps, len(apps), err)
	}
}

func appsDoc(n int) string {
	var b strings.Builder
	b.WriteString(`{"apps": [`)
	for i := range n {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `{"name": "app-%d", "script": "w"}`, i)
	}
	b.WriteString("]}")
	return b.String()
}
