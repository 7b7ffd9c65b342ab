package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The generated sections of the docs are what the field tables make: a key added to the
// table without `go generate ./host/config` fails here, in the ordinary test run.
func TestDocsAreGenerated(t *testing.T) {
	for doc, sections := range Generated {
		t.Run(doc, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("..", "..", doc))
			if err != nil {
				t.Fatal(err)
			}
			want, err := Regenerate(data, sections)
			if err != nil {
				t.Fatal(err)
			}
			if string(want) != string(data) {
				t.Errorf("%s is not what the field tables make: run `go generate ./host/config`", doc)
			}
		})
	}
}

func TestRegenerate(t *testing.T) {
	keys, err := Section(SectionKeys)
	if err != nil {
		t.Fatal(err)
	}
	begin, end := beginMarker(SectionKeys), endMarker(SectionKeys)
	tests := []struct {
		name    string
		doc     string
		want    string // "" when an error is wanted
		wantErr string
	}{
		{"stale section replaced", "# T\n" + begin + "| old |\n" + end + "\ntail\n", "# T\n" + begin + keys + end + "\ntail\n", ""},
		{"empty section filled", begin + end, begin + keys + end, ""},
		{"current section kept", begin + keys + end, begin + keys + end, ""},
		{"no markers", "# T\n| key |\n", "", `section "keys": want the line`},
		{"end before begin", end + "\n" + begin, "", `section "keys"`},
		{"no end", begin + "x\n", "", `section "keys"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Regenerate([]byte(tc.doc), []string{SectionKeys})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Errorf("got\n%s\nwant\n%s", got, tc.want)
			}
		})
	}
	if _, err := Section("nope"); err == nil {
		t.Error("an unknown section made no error")
	}
}

// Every key of both tables, and every flag, appears in the generated reference.
func TestReferenceListsEveryField(t *testing.T) {
	keys, err := Section(SectionKeys)
	if err != nil {
		t.Fatal(err)
	}
	lua, err := Section(SectionLuaKeys)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range AppFields {
		if !strings.Contains(keys, "| `"+f.Key+"` |") {
			t.Errorf("the key reference has no row for %s", f.Key)
		}
		if !strings.Contains(lua, "`"+f.Key+"`") {
			t.Errorf("the Lua key list has no %s", f.Key)
		}
	}
	for _, fl := range FlagNames() {
		if !strings.Contains(keys, "`--"+fl+"`") {
			t.Errorf("the key reference does not show --%s", fl)
		}
	}
}
