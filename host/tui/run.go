package tui

import (
	"context"
	"io"

	tea "github.com/charmbracelet/bubbletea"
)

// Run shows monit on the terminal of in and out until the user quits or ctx ends.
func Run(ctx context.Context, opt Options, in io.Reader, out io.Writer) error {
	m := New(opt)
	defer m.Close()
	p := tea.NewProgram(m, tea.WithContext(ctx), tea.WithInput(in), tea.WithOutput(out), tea.WithAltScreen())
	_, err := p.Run()
	if ctx.Err() != nil {
		// An interrupt from outside (the context of the command) is a normal end.
		return nil
	}
	return err
}
