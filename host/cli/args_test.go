package cli

import (
	"slices"
	"testing"
)

// --socket takes its value after a space as users write it, but only words that are its values,
// and never after --.
func TestOptionalValues(t *testing.T) {
	tests := []struct{ in, want []string }{
		{[]string{"start", "app", "--socket", "shared", "-i", "4"}, []string{"start", "app", "--socket=shared", "-i", "4"}},
		{[]string{"start", "--socket", "app"}, []string{"start", "--socket", "app"}},
		{[]string{"start", "app", "--socket"}, []string{"start", "app", "--socket"}},
		{[]string{"start", "--socket", "true", "app"}, []string{"start", "--socket=true", "app"}},
		{[]string{"start", "app", "--", "--socket", "shared"}, []string{"start", "app", "--", "--socket", "shared"}},
	}
	for _, tc := range tests {
		if got := optionalValues(tc.in); !slices.Equal(got, tc.want) {
			t.Errorf("optionalValues(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
