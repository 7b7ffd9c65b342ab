package logs

import (
	"reflect"
	"testing"
	"time"
)

func TestTimeOf(t *testing.T) {
	iso := "2006-01-02T15:04:05.000-07:00"
	tests := []struct {
		f    LineFormat
		line string
		want string // the time in iso; "" for none
	}{
		{LineFormat{Layout: iso}, "2024-03-07T09:04:05.678+01:00: hello: world", "2024-03-07T09:04:05.678+01:00"},
		{LineFormat{Layout: "2006-01-02 15:04:05 -07:00"}, "2024-03-07 09:04:05 +01:00: x", "2024-03-07T09:04:05.000+01:00"},
		{LineFormat{Layout: "15: 04"}, "09: 04: x", "0000-01-01T09:04:00.000+00:00"},
		{LineFormat{Layout: iso}, "no stamp: here", ""},
		{LineFormat{}, "2024-03-07T09:04:05.678+01:00: raw file", ""},
		{LineFormat{Layout: "2006-01-02T15:04:05.000Z07:00", JSON: true}, `{"message":"m\n","timestamp":"2024-03-07T08:04:05.678Z","type":"out"}`, "2024-03-07T09:04:05.678+01:00"},
		{LineFormat{Layout: iso, JSON: true}, `not json`, ""},
	}
	for _, tc := range tests {
		got, ok := tc.f.TimeOf(tc.line)
		switch {
		case tc.want == "" && ok:
			t.Errorf("TimeOf(%q) = %v; want none", tc.line, got)
		case tc.want != "" && (!ok || !got.Equal(mustParse(t, iso, tc.want))):
			t.Errorf("TimeOf(%q) = %v, %v; want %s", tc.line, got, ok, tc.want)
		}
	}
}

func mustParse(t *testing.T, layout, s string) time.Time {
	t.Helper()
	tm, err := time.Parse(layout, s)
	if err != nil {
		t.Fatal(err)
	}
	return tm
}

// Three files: two instances' stamped logs written alternately and a raw one. The merge is
// in time order, ties in source order, raw lines first.
func TestMerge(t *testing.T) {
	f := LineFormat{Layout: "15:04:05.000"}
	a := Entries(0, []string{"10:00:00.100: a1", "10:00:00.300: a2", "continued", "10:00:00.500: a3"}, f)
	b := Entries(1, []string{"10:00:00.200: b1", "10:00:00.300: b2", "10:00:00.600: b3"}, f)
	raw := Entries(2, []string{"r1", "r2"}, LineFormat{})
	var got []string
	for _, e := range Merge(a, b, raw) {
		got = append(got, e.Text)
	}
	want := []string{"r1", "r2",
		"10:00:00.100: a1", "10:00:00.200: b1", "10:00:00.300: a2", "continued", "10:00:00.300: b2",
		"10:00:00.500: a3", "10:00:00.600: b3"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("merged\n%q\nwant\n%q", got, want)
	}
}
