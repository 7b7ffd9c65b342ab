package ports

import (
	"strconv"
	"strings"
	"testing"
)

func TestParseSpecValid(t *testing.T) {
	tests := []struct {
		in   string
		want Spec
	}{
		{"3000", Spec{Kind: Single, Start: 3000, End: 3000}},
		{"3000-3003", Spec{Kind: Range, Start: 3000, End: 3003}},
		{"auto:5000-5100", Spec{Kind: Auto, Start: 5000, End: 5100}},
		{" 3000 ", Spec{Kind: Single, Start: 3000, End: 3000}},
		{"\t3000-3003\n", Spec{Kind: Range, Start: 3000, End: 3003}},
		{"1", Spec{Kind: Single, Start: 1, End: 1}},
		{"65535", Spec{Kind: Single, Start: 65535, End: 65535}},
		{"3000-3000", Spec{Kind: Range, Start: 3000, End: 3000}},
		{"1-65535", Spec{Kind: Range, Start: 1, End: 65535}},
		{"auto:1-65535", Spec{Kind: Auto, Start: 1, End: 65535}},
		{"auto:7000-7000", Spec{Kind: Auto, Start: 7000, End: 7000}},
		{"03000", Spec{Kind: Single, Start: 3000, End: 3000}},
	}
	for _, tt := range tests {
		t.Run(strconv.Quote(tt.in), func(t *testing.T) {
			got, err := ParseSpec(tt.in)
			if err != nil {
				t.Fatalf("ParseSpec(%q): unexpected error: %v", tt.in, err)
			}
			if got != tt.want {
				t.Fatalf("ParseSpec(%q) = %+v, want %+v", tt.in, got, tt.want)
			}
			if got.Size() != tt.want.End-tt.want.Start+1 {
				t.Fatalf("Size() = %d", got.Size())
			}
		})
	}
}

func TestParseSpecInvalid(t *testing.T) {
	tests := []struct {
		in      string
		wantSub string // part of the explanation, besides the quoted spec
	}{
		{"abc", "not a port number"},
		{"0", "out of range"},
		{"70000", "out of range"},
		{"65536", "out of range"},
		{"99999999999999999999999", "out of range"},
		{"3003-3000", "reversed"},
		{"auto:", "auto: needs a range"},
		{"3000-", "no end port"},
		{"auto:5000", "not a single port"},
		{"-3000", "missing"},
		{"3000-3003-3005", "not a port number"},
		{"", "empty"},
		{"   ", "empty"},
		{"auto:abc-def", "not a port number"},
		{"+3000", "not a port number"},
		{"3e3", "not a port number"},
		{"0x10", "not a port number"},
		{"3000 - 3003", "not a port number"},
		{"auto: 5000-5100", "not a port number"},
		{"AUTO:5000-5100", "not a port number"},
		{"auto:5000-0", "out of range"},
		{"٣٠٠٠", "not a port number"}, // Arabic-Indic digits
		{"3000,3001", "not a port number"},
	}
	for _, tt := range tests {
		t.Run(strconv.Quote(tt.in), func(t *testing.T) {
			got, err := ParseSpec(tt.in)
			if err == nil {
				t.Fatalf("ParseSpec(%q) = %+v, want an error", tt.in, got)
			}
			if got != (Spec{}) {
				t.Errorf("ParseSpec(%q) returned %+v together with an error", tt.in, got)
			}
			msg := err.Error()
			if !strings.Contains(msg, strconv.Quote(tt.in)) {
				t.Errorf("error %q does not quote the spec %q", msg, tt.in)
			}
			if !strings.Contains(msg, tt.wantSub) {
				t.Errorf("error %q does not say %q", msg, tt.wantSub)
			}
		})
	}
}

func TestSpecStringRoundTrip(t *testing.T) {
	tests := []struct {
		spec Spec
		want string
	}{
		{Spec{Kind: Single, Start: 3000, End: 3000}, "3000"},
		{Spec{Kind: Range, Start: 3000, End: 3003}, "3000-3003"},
		{Spec{Kind: Range, Start: 3000, End: 3000}, "3000-3000"},
		{Spec{Kind: Auto, Start: 5000, End: 5100}, "auto:5000-5100"},
		{Spec{Kind: Single, Start: 1, End: 1}, "1"},
		{Spec{Kind: Auto, Start: 65535, End: 65535}, "auto:65535-65535"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := tt.spec.String(); got != tt.want {
				t.Fatalf("String() = %q, want %q", got, tt.want)
			}
			back, err := ParseSpec(tt.spec.String())
			if err != nil {
				t.Fatalf("ParseSpec(%q): %v", tt.spec.String(), err)
			}
			if back != tt.spec {
				t.Fatalf("round trip: got %+v, want %+v", back, tt.spec)
			}
		})
	}
}

func TestCheckInstances(t *testing.T) {
	tests := []struct {
		name    string
		spec    string
		n       int
		wantErr string   // exact message; "" = no error
		wantSub []string // substrings, when the message is not fixed word for word
	}{
		{name: "single one instance", spec: "3000", n: 1},
		{name: "single zero instances", spec: "3000", n: 0},
		{name: "single many", spec: "3000", n: 4,
			wantSub: []string{"3000", "4 instances", "3000-3003", "auto:3000-"}},
		{name: "single many near the top", spec: "65534", n: 4,
			wantSub: []string{"65534", "65534-65535", "auto:65534-65535"}},
		{name: "range exact", spec: "3000-3003", n: 4},
		{name: "range larger", spec: "3000-3010", n: 4},
		{name: "range too small", spec: "3000-3001", n: 4,
			wantErr: "Port range 3000-3001 has only 2 ports but 4 instances requested"},
		{name: "range of one", spec: "3000-3000", n: 2,
			wantErr: "Port range 3000-3000 has only 1 ports but 2 instances requested"},
		{name: "auto large enough", spec: "auto:5000-5100", n: 101},
		{name: "auto too small", spec: "auto:5000-5001", n: 3,
			wantSub: []string{"auto:5000-5001", "2 ports", "3 instances"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := ParseSpec(tt.spec)
			if err != nil {
				t.Fatal(err)
			}
			err = s.CheckInstances(tt.n)
			wantOK := tt.wantErr == "" && tt.wantSub == nil
			if wantOK {
				if err != nil {
					t.Fatalf("CheckInstances(%d) on %s: unexpected error %v", tt.n, tt.spec, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("CheckInstances(%d) on %s: want an error", tt.n, tt.spec)
			}
			if tt.wantErr != "" && err.Error() != tt.wantErr {
				t.Fatalf("error = %q, want exactly %q", err, tt.wantErr)
			}
			for _, sub := range tt.wantSub {
				if !strings.Contains(err.Error(), sub) {
					t.Errorf("error %q does not contain %q", err, sub)
				}
			}
		})
	}
}

func FuzzParseSpec(f *testing.F) {
	for _, s := range []string{
		"3000", "3000-3003", "auto:5000-5100", " 3000 ", "1", "65535",
		"abc", "0", "70000", "3003-3000", "auto:", "3000-", "auto:5000", "-3000",
		"3000-3003-3005", "", "auto:abc-def", "+3000", "3e3", "auto:-", "-", "auto:auto:1-2",
		"99999999999999999999", "\x00", "auto:1-65535",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		s, err := ParseSpec(in)
		if err != nil {
			if !strings.Contains(err.Error(), strconv.Quote(in)) {
				t.Fatalf("error %q does not quote the spec", err)
			}
			return
		}
		if s.Start < 1 || s.Start > s.End || s.End > 65535 {
			t.Fatalf("ParseSpec(%q) = %+v: bounds violate 1 <= Start <= End <= 65535", in, s)
		}
		if s.Kind == Single && s.Start != s.End {
			t.Fatalf("ParseSpec(%q) = %+v: single port with Start != End", in, s)
		}
		back, err := ParseSpec(s.String())
		if err != nil {
			t.Fatalf("ParseSpec(%q) of String() of %+v: %v", s.String(), s, err)
		}
		if back != s {
			t.Fatalf("round trip of %q: %+v -> %q -> %+v", in, s, s.String(), back)
		}
	})
}
