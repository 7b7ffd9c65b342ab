package config

import (
	"regexp"
	"sync"
)

// lazyRegexp compiles expr on first use. A package-level regexp.MustCompile runs in every
// pmdaemon process, `list` included, although only a few commands read a config.
func lazyRegexp(expr string) func() *regexp.Regexp {
	return sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(expr) })
}
