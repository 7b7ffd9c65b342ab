package config

import "path/filepath"

// RunsNode reports whether the app's process is node itself: its script is a .js, .mjs or
// .cjs file (which pmdaemon runs with node), or its command's program is node. Such an app is
// given PM2's IPC channel (process.send), and with wait_ready waits for process.send('ready')
// as under PM2. A compound shell line (`a && node b.js`) runs a shell, not node, so it does
// not count.
func (a *App) RunsNode() bool {
	if _, compound := ShellSyntax(a.Script); compound {
		return false
	}
	words, err := SplitCommand(a.Script)
	if err != nil || len(words) == 0 {
		return false
	}
	if interpreters[extOf(words[0])] == "node" {
		return true
	}
	base := filepath.Base(words[0])
	return base == "node" || base == "nodejs"
}
