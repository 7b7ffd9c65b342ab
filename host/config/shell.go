package config

import (
	"strings"
)

// shellKeywords start compound commands: `exec` cannot come before them.
var shellKeywords = map[string]bool{
	"if": true, "for": true, "while": true, "until": true, "case": true, "{": true, "!": true,
	"(": true, "function": true, "select": true,
}

// ShellSyntax reports whether a command line needs a shell to mean what it says (variables,
// globs, redirections, backquotes, command lists), and whether it is compound: a list,
// pipeline or keyword construct, which the shell must stay around to run, so it cannot be
// prefixed with `exec`. Quoted text counts as a shell would read it: nothing in single
// quotes is special, `$` and backquotes in double quotes are.
func ShellSyntax(cmd string) (shell, compound bool) {
	wordStart := true
	for i := 0; i < len(cmd); i++ {
		c := cmd[i]
		switch c {
		case '\\':
			i++
			wordStart = false
			continue
		case '\'':
			j := strings.IndexByte(cmd[i+1:], '\'')
			if j < 0 {
				return false, false // unterminated: SplitCommand reports it
			}
			i += j + 1
		case '"':
			for i++; i < len(cmd) && cmd[i] != '"'; i++ {
				switch cmd[i] {
				case '\\':
					i++
				case '$', '`':
					shell = true
				}
			}
		case '&':
			if i > 0 && (cmd[i-1] == '>' || cmd[i-1] == '<') {
				shell = true // 2>&1: a redirection, not a background job
				break
			}
			return true, true
		case ';', '|', '(', ')', '\n':
			return true, true
		case '$', '`', '<', '>', '*', '?', '[':
			shell = true
		case '~', '#':
			if wordStart {
				shell = true
			}
		}
		wordStart = c == ' ' || c == '\t'
	}
	words, err := SplitCommand(cmd)
	if err != nil || len(words) == 0 {
		return shell, false
	}
	if shellKeywords[words[0]] {
		return true, true
	}
	// NAME=value before the command: the shell puts it in the command's environment.
	if k, _, ok := strings.Cut(words[0], "="); ok && validEnvName(k) {
		shell = true
	}
	return shell, false
}

func validEnvName(s string) bool {
	if s == "" || (s[0] >= '0' && s[0] <= '9') {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// shellQuote quotes a word for sh so that it stays one word with no expansion.
func shellQuote(w string) string {
	if w != "" && strings.Trim(w, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-./=:,@+%") == "" {
		return w
	}
	return "'" + strings.ReplaceAll(w, "'", `'\''`) + "'"
}

// Shell is the shell that runs command lines with shell syntax.
const Shell = "/bin/sh"

// shellArgv runs script (with args appended, quoted) through sh -c. A simple command is
// exec'd so the instance's process is the app itself (its pid, its signals); a compound one
// keeps the shell as the instance's main process.
func shellArgv(script string, args []string, compound bool) []string {
	line := strings.TrimSpace(script)
	for _, a := range args {
		line += " " + shellQuote(a)
	}
	if !compound {
		line = "exec " + line
	}
	return []string{Shell, "-c", line}
}
