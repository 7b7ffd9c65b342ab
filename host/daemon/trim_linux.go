package daemon

import (
	"bufio"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// trimText drops the daemon's mapping of its own code from its page tables. Start-up touches code that never runs again (every package's
// init, the CLI's); the kernel maps whole 64 KiB windows around each touched page from the
// page cache, so a freshly started daemon counts most of its binary in its RSS. The pages
// are clean and file-backed: unmapping them frees nothing to lose, and what runs later is
// simply mapped again from the page cache.
func trimText() (trimmed int) {
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		return 0
	}
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		// Code only (r-xp): a position-independent build keeps relocated constant data in
		// read-only mappings too (RELRO), whose pages differ from the file and must stay.
		if len(fields) < 6 || fields[5] != exe || fields[1] != "r-xp" {
			continue
		}
		lo, hi, ok := strings.Cut(fields[0], "-")
		if !ok {
			continue
		}
		start, err1 := strconv.ParseUint(lo, 16, 64)
		end, err2 := strconv.ParseUint(hi, 16, 64)
		if err1 != nil || err2 != nil || end <= start {
			continue
		}
		// The raw syscall: these addresses are not Go memory, so no []byte may point at them.
		if _, _, e := unix.Syscall(unix.SYS_MADVISE, uintptr(start), uintptr(end-start), unix.MADV_DONTNEED); e == 0 {
			trimmed += int(end - start)
		}
	}
	return trimmed
}
