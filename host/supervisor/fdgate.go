package supervisor

// The daemon's file descriptors, per instance and in flight.
//
// A running instance holds one descriptor of the daemon's: the pidfd its exit is awaited on
// (waitChild, watchPid). An instance with a log writer holds the writer's pidfd too, one with
// PM2's IPC channel the daemon's end of it, and one with a socket of its own that listener.
// Everything else a spawn or a health check opens (log files, pipes, the cgroup directory,
// the exec status pipe, a check's connection) is closed when it is done; spawns and checks
// pass through gates of fixed size, so what they hold at once is bounded by InFlightFDs
// whatever the number of instances. The daemon's open-file budget is therefore the held
// descriptors of every instance plus a constant (host/daemon/limits.go), not a guess per
// instance: 10,000 instances fit in an open-file limit of 20,000.

import "context"

const (
	spawnSlots = 16 // spawns at once
	checkSlots = 32 // health checks at once
	// fdsPerSpawn bounds what one spawn opens for a moment: the out and err logs, the
	// combined log, two pipes to the log writer and the writer's exec status pipe, the child's
	// end of the IPC pair, the cgroup directory, the exec status pipe, /dev/null, Go's copy
	// of the pidfd.
	fdsPerSpawn = 16
	// fdsPerCheck bounds what one health check opens: a connection, or a command's
	// /dev/null, output pipe, exec status pipe and pidfd.
	fdsPerCheck = 8
	// InFlightFDs is the most descriptors spawns and health checks hold at once.
	InFlightFDs = spawnSlots*fdsPerSpawn + checkSlots*fdsPerCheck
)

var (
	spawnGate = make(chan struct{}, spawnSlots)
	checkGate = make(chan struct{}, checkSlots)
)

// enterCtx takes a slot of gate, waiting for one, and returns the func that gives it back; it
// gives up when ctx is done (nil, ctx.Err()). Every wait for a slot takes the instance's stop
// into account, so a stop while a gate is full does not wait for a slot.
func enterCtx(ctx context.Context, gate chan struct{}) (func(), error) {
	select {
	case gate <- struct{}{}:
		return func() { <-gate }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
