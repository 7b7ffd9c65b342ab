package notify

import (
	"fmt"
	"io"
	"os"
	"testing"
)

// childEnv makes the test binary act as an app instead of running tests: it sends
// childMessageEnv to NOTIFY_SOCKET, then stays alive until its stdin closes, as a running app
// would, so that the pid the server sees still names it when the test checks.
const (
	childEnv        = "PMDAEMON_NOTIFY_TEST_CHILD"
	childMessageEnv = "PMDAEMON_NOTIFY_TEST_MESSAGE"
)

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "send" {
		if err := Send(os.Getenv("NOTIFY_SOCKET"), os.Getenv(childMessageEnv)); err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			os.Exit(2)
		}
		_, _ = io.Copy(io.Discard, os.Stdin)
		os.Exit(0)
	}
	os.Exit(m.Run())
}
