package config

import (
	"strings"
	"testing"
	"time"
)

func TestMomentLayout(t *testing.T) {
	at := time.Date(2024, 3, 7, 9, 4, 5, 678_000_000, time.FixedZone("", 3600))
	tests := []struct {
		format string
		want   string // at in the format; "" when an error is wanted
		err    string // a part of the error
	}{
		{format: "YYYY-MM-DD HH:mm:ss Z", want: "2024-03-07 09:04:05 +01:00"},
		{format: "YYYY-MM-DDTHH:mm:ss", want: "2024-03-07T09:04:05"},
		{format: DefaultLogDateFormat, want: "2024-03-07T09:04:05.678+01:00"},
		{format: "YYYY-MM-DD HH:mm:ss.SSS", want: "2024-03-07 09:04:05.678"},
		{format: "YYYY-MM-DD HH:mm Z", want: "2024-03-07 09:04 +01:00"},
		{format: "DD/MM/YY hh:mm:ss A ZZ", want: "07/03/24 09:04:05 AM +0100"},
		{format: "ddd, D MMM YYYY h:m:s a", want: "Thu, 7 Mar 2024 9:4:5 am"},
		{format: "dddd D MMMM YYYY, ss,SS", want: "Thursday 7 March 2024, 05,67"},
		{format: "[at] HH:mm DDDD", want: "at 09:04 067"},
		{format: "YYYY-MM-DD HH:mm:ss", want: "2024-03-07 09:04:05"},
		{format: "Do MMM", err: "token Do cannot be written"},
		{format: "H:mm", err: "token H cannot be written by pmdaemon; use HH"},
		{format: "YYYY-MM-DD Q", err: "token Q"},
		{format: "YYYYY", err: "unknown token YYYYY"},
		{format: "YYYY-MM-DD qq", err: "unknown token qq"},
		{format: "HH:mm:ssSSS", err: "must follow \".\" or \",\""},
		{format: "[day 1] HH", err: "holds a digit"},
		{format: "[Monday] HH", err: "holds \"Mon\""},
		{format: "[oops HH", err: "a [ without its ]"},
		{format: "HH 12", err: "a digit outside [brackets]"},
		{format: "  ", err: "must not be empty"},
	}
	for _, tc := range tests {
		t.Run(tc.format, func(t *testing.T) {
			layout, err := MomentLayout(tc.format)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("MomentLayout(%q) = %q, %v; want an error with %q", tc.format, layout, err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("MomentLayout(%q): %v", tc.format, err)
			}
			if got := at.Format(layout); got != tc.want {
				t.Errorf("MomentLayout(%q) = %q, which writes %q; want %q", tc.format, layout, got, tc.want)
			}
		})
	}
}

// A bad log key is an error naming the key, from a JSON file as from any front.
func TestLogKeysRefused(t *testing.T) {
	tests := []struct {
		json string
		want string
	}{
		{`{"name": "a", "script": "x", "log_date_format": "YYYY Qo"}`, "log_date_format"},
		{`{"name": "a", "script": "x", "log_type": "xml"}`, "log_type"},
		{`{"name": "a", "script": "x", "time": "yes"}`, "time"},
		{`{"name": "a", "script": "x", "log_file": ""}`, "log_file"},
		{`{"name": "a", "script": "x", "merge_logs": 1}`, "merge_logs"},
	}
	for _, tc := range tests {
		t.Run(tc.want, func(t *testing.T) {
			_, err := ParseJSON([]byte(`{"apps": [`+tc.json+`]}`), "eco.json", "/tmp")
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "eco.json") {
				t.Fatalf("got %v; want an error naming eco.json and %s", err, tc.want)
			}
		})
	}
}

// PM2's `log_file: true` (its default combined path) is noted, not an error; false is nothing.
func TestPM2LogFileTrue(t *testing.T) {
	eco, err := ParseEcosystem([]byte(`{"apps": [{"name": "a", "script": "x", "log": true}, {"name": "b", "script": "x", "log_file": false}]}`), "eco.json", "/d")
	if err != nil {
		t.Fatal(err)
	}
	if eco.Apps[0].LogFile != "" || eco.Apps[1].LogFile != "" || len(eco.Notes) != 1 || !strings.Contains(eco.Notes[0], `"log": true is not a path`) {
		t.Errorf("apps %+v, notes %q", eco.Apps, eco.Notes)
	}
}
