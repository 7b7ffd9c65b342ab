package sockets

import (
	"bytes"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// WaitsOn reports whether one of pids is waiting for connections on the listener: it has the
// socket in an epoll set (Go, Node's libuv, Python's asyncio and most event loops register a
// listening socket there as they start serving), or one of its threads is blocked in
// accept(2) on it. Unlike AcceptedBy it needs no connection, so it tells a new instance from
// an old one that shares the socket (a reload), which a probe cannot: whichever process the
// kernel wakes takes the probe. An app that polls with select(2) or poll(2) is not seen here;
// AcceptedBy is the test for those.
func WaitsOn(l *Listener, pids []int) bool {
	for _, pid := range pids {
		if epollWatches(pid, l.Inode) || blockedInAccept(pid, l.Inode) {
			return true
		}
	}
	return false
}

// epollWatches reports whether an epoll instance of pid watches the file with inode: its
// fdinfo lists each watched file as "tfd: N events: ... ino:HEX sdev:...".
func epollWatches(pid int, inode uint64) bool {
	dir := "/proc/" + strconv.Itoa(pid)
	ents, err := os.ReadDir(dir + "/fd")
	if err != nil {
		return false
	}
	want := []byte(" ino:" + strconv.FormatUint(inode, 16) + " ")
	for _, e := range ents {
		link, err := os.Readlink(dir + "/fd/" + e.Name())
		if err != nil || link != "anon_inode:[eventpoll]" {
			continue
		}
		info, err := os.ReadFile(dir + "/fdinfo/" + e.Name())
		if err == nil && bytes.Contains(info, want) {
			return true
		}
	}
	return false
}

// blockedInAccept reports whether a thread of pid is in accept or accept4 on an fd that is the
// socket with inode (/proc/PID/task/TID/syscall: the call's number, then its arguments).
func blockedInAccept(pid int, inode uint64) bool {
	dir := "/proc/" + strconv.Itoa(pid)
	tasks, err := os.ReadDir(dir + "/task")
	if err != nil {
		return false
	}
	want := "socket:[" + strconv.FormatUint(inode, 10) + "]"
	for _, t := range tasks {
		b, err := os.ReadFile(dir + "/task/" + t.Name() + "/syscall")
		if err != nil {
			continue
		}
		f := strings.Fields(string(b))
		if len(f) < 2 {
			continue
		}
		nr, err := strconv.Atoi(f[0])
		if err != nil || nr != unix.SYS_ACCEPT && nr != unix.SYS_ACCEPT4 {
			continue
		}
		fd, err := strconv.ParseUint(strings.TrimPrefix(f[1], "0x"), 16, 31)
		if err != nil {
			continue
		}
		if link, err := os.Readlink(dir + "/fd/" + strconv.FormatUint(fd, 10)); err == nil && link == want {
			return true
		}
	}
	return false
}
