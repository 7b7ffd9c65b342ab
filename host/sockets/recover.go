package sockets

import (
	"errors"
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// Recover takes back the listener of port after a daemon SIGKILL, from one of pids (the
// processes of an instance it was handed to): it looks for the socket with inode among their
// open fds (/proc/PID/fd/* reading "socket:[INODE]") and copies it into the daemon with
// pidfd_open + pidfd_getfd. The first process that has it wins. The error names the inode and
// the pids when none has it, and the pid when the kernel refuses the copy.
func Recover(pids []int, inode uint64, port int, bind string) (*Listener, error) {
	if _, err := parseBind(bind); err != nil {
		return nil, err
	}
	var errs []error
	for _, pid := range pids {
		fd, err := findSocketFD(pid, inode)
		if err != nil {
			// A process that exited meanwhile is no reason to stop; the others may hold it.
			errs = append(errs, takeError(port, pid, "reading its open files", err))
			continue
		}
		if fd < 0 {
			continue
		}
		l, err := copyFrom(pid, fd, inode, port, bind)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		return l, nil
	}
	if len(errs) == 0 {
		return nil, fmt.Errorf("cannot recover the listening socket of port %d: socket inode %d is not open in any of pids %v", port, inode, pids)
	}
	// The pids that could not be searched are the likely holders: their reasons are the news.
	head := fmt.Errorf("cannot recover the listening socket of port %d (socket inode %d) from pids %v", port, inode, pids)
	return nil, errors.Join(append([]error{head}, errs...)...)
}

// copyFrom copies fd of pid into this process and checks that it is still the socket looked
// for: between the readlink and the copy the process may have closed that fd and reused its
// number.
func copyFrom(pid, fd int, inode uint64, port int, bind string) (*Listener, error) {
	pidfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return nil, takeError(port, pid, "pidfd_open", err)
	}
	defer unix.Close(pidfd)
	// The kernel sets close-on-exec on the copy, as the daemon wants for its own listeners.
	nfd, err := unix.PidfdGetfd(pidfd, fd, 0)
	if err != nil {
		return nil, takeError(port, pid, "pidfd_getfd", err)
	}
	f := os.NewFile(uintptr(nfd), "tcp-listener "+hostPort(bind, port))
	l, err := Adopt(f, port, bind)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("pid %d: %w", pid, err)
	}
	if l.Inode != inode {
		f.Close()
		return nil, fmt.Errorf("pid %d: fd %d changed to socket inode %d while it was taken, not %d", pid, fd, l.Inode, inode)
	}
	return l, nil
}

// takeError says why the socket could not be taken from pid, with what to do about it.
func takeError(port, pid int, step string, err error) error {
	hint := ""
	switch {
	case errors.Is(err, unix.EPERM), errors.Is(err, unix.EACCES):
		hint = " (the daemon needs ptrace access to it: same user and Yama ptrace_scope 0 or 1, or CAP_SYS_PTRACE)"
	case errors.Is(err, unix.ENOSYS):
		hint = " (pidfd_getfd needs Linux 5.6 or later)"
	case errors.Is(err, unix.ESRCH), errors.Is(err, os.ErrNotExist):
		hint = " (the process has exited)"
	}
	return fmt.Errorf("cannot take the listening socket of port %d from pid %d: %s: %w%s", port, pid, step, err, hint)
}

// findSocketFD returns the number of pid's fd that is the socket with inode, or -1.
func findSocketFD(pid int, inode uint64) (int, error) {
	dir := "/proc/" + strconv.Itoa(pid) + "/fd/"
	d, err := os.Open(dir)
	if err != nil {
		return -1, err
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return -1, err
	}
	want := "socket:[" + strconv.FormatUint(inode, 10) + "]"
	for _, name := range names {
		// An fd closed between the listing and the readlink is simply not the one.
		if link, err := os.Readlink(dir + name); err == nil && link == want {
			return strconv.Atoi(name)
		}
	}
	return -1, nil
}
