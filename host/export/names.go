package export

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// Namer gives each app a DNS label (RFC 1035: lowercase letters, digits and '-', starting
// with a letter, at most Max bytes), which Kubernetes object names and Nomad service names
// must be. pmdaemon names are freer (My_App, api.v2), so a name that is not a label already is
// converted the same way every time, and two apps never get the same label: the conversion is
// reported, since the user will look for the app under its new name.
type Namer struct {
	// Max is the longest label to give; a longer one is cut and given a hash of the original
	// name, to stay apart from others cut the same way.
	Max   int
	given map[string]string // label → the name it was given to
}

// Label returns name's label, reporting a conversion in r (what names the target: "Kubernetes").
func (n *Namer) Label(name, target string, r *Report) string {
	if n.given == nil {
		n.given = map[string]string{}
	}
	label := dnsLabel(name, n.Max)
	if owner, taken := n.given[label]; taken && owner != name {
		label = withHash(label, name, n.Max) // another name converted to the same label first
	}
	n.given[label] = name
	if label != name {
		r.Change("%s is named %q in %s (names there are DNS labels: lowercase letters, digits and '-', at most %d characters)", AppLabel(name), label, target, n.Max)
	}
	return label
}

// dnsLabel converts s deterministically: lowercase, each run of other characters becomes
// '-', no '-' at either end, "app-" before a label that does not start with a letter.
func dnsLabel(s string, max int) string {
	var b strings.Builder
	dash := false
	for _, c := range strings.ToLower(s) {
		if c >= 'a' && c <= 'z' || c >= '0' && c <= '9' {
			if dash && b.Len() > 0 {
				b.WriteByte('-')
			}
			b.WriteRune(c)
			dash = false
			continue
		}
		dash = true
	}
	label := b.String()
	if label == "" || label[0] < 'a' || label[0] > 'z' {
		label = "app-" + label
		label = strings.TrimSuffix(label, "-")
	}
	if len(label) > max || !IsDNSLabel(label) {
		label = withHash(label, s, max)
	}
	return label
}

// withHash cuts label to leave room for "-" and 8 hex digits of original's SHA-256.
func withHash(label, original string, max int) string {
	sum := sha256.Sum256([]byte(original))
	suffix := "-" + hex.EncodeToString(sum[:4])
	keep := min(len(label), max-len(suffix))
	return strings.TrimSuffix(label[:keep], "-") + suffix
}

// IsDNSLabel reports whether s is an RFC 1035 label as Kubernetes checks one
// (apimachinery's IsDNS1035Label, which the tests hold it to): at most 63 lowercase letters,
// digits and '-', starting with a letter and not ending with '-'.
func IsDNSLabel(s string) bool {
	if s == "" || len(s) > 63 || s[0] < 'a' || s[0] > 'z' || s[len(s)-1] == '-' {
		return false
	}
	for _, c := range []byte(s) {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}
