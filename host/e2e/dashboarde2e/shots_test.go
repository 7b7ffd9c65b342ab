package dashboarde2e

import "os"

// shots reports whether this run writes the screenshots of docs/dashboard.md.
func shots() bool { return os.Getenv("PMDAEMON_SCREENSHOTS") == "1" }
