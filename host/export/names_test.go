package export

import (
	"testing"

	"k8s.io/apimachinery/pkg/util/validation"
)

// IsDNSLabel takes what apimachinery's IsDNS1035Label takes.
func TestIsDNSLabelIsApimachinerys(t *testing.T) {
	for _, s := range []string{"web", "web-1", "a", "", "-a", "a-", "1a", "Web", "a_b", "a.b", "ä", "a--b",
		"a23456789012345678901234567890123456789012345678901234567890123", "a234567890123456789012345678901234567890123456789012345678901234"} {
		checkDNSLabel(t, s)
	}
}

func FuzzIsDNSLabel(f *testing.F) {
	for _, s := range []string{"web", "1a", "a-"} {
		f.Add(s)
	}
	f.Fuzz(checkDNSLabel)
}

func checkDNSLabel(t *testing.T, s string) {
	if got, want := IsDNSLabel(s), len(validation.IsDNS1035Label(s)) == 0; got != want {
		t.Fatalf("IsDNSLabel(%q) = %v; apimachinery says %v", s, got, want)
	}
}
