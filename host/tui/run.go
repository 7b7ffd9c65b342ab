package tui

import (
	"context"
	"errors"
	"io"

	tea "github.com/charmbracelet/bubbletea"
)

// Run shows monit on the terminal of in and out until the user quits or ctx ends.
func Run(ctx context.Context, opt Options, in io.Reader, out io.Writer) error {
	m := New(opt)
	defer m.Close()
	p := tea.NewProgram(m, tea.WithContext(ctx), tea.WithInput(in), tea.WithOutput(out), tea.WithAltScreen())
	_, err := p.Run()
	if errors.Is(err, tea.ErrInterrupted) || ctx.Err() != nil {
		// A SIGINT from outside (ctrl+c itself is a key) or the command's end is how a
		// user stops monit, as q is.
		return nil
	}
	return err
}
