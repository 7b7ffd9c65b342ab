package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/pmdaemon/pmdaemon/host/api"
)

func (e *Env) pluginCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "plugin",
		Short: "Register, list and remove plugins (allocation policies and lifecycle hooks)",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(e.pluginAddCmd(), e.pluginListCmd(), e.pluginRemoveCmd(), e.pluginTrustCmd())
	return cmd
}

func (e *Env) pluginAddCmd() *cobra.Command {
	var configJSON, configFile, timeout string
	cmd := &cobra.Command{
		Use:   "add NAME PATH",
		Short: "Register the plugin binary at PATH as NAME; it is pinned by its sha256",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 2 {
				return fmt.Errorf("plugin add takes NAME and PATH, got %d arguments", len(args))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := pluginConfig(configJSON, configFile)
			if err != nil {
				return err
			}
			path, err := filepath.Abs(args[1])
			if err != nil {
				return fmt.Errorf("plugin path %q: %v", args[1], err)
			}
			callTimeout, err := api.ParsePluginTimeout(timeout)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			c, err := e.client(ctx)
			if err != nil {
				return err
			}
			row, err := c.AddPlugin(ctx, api.PluginAddRequest{Name: args[0], Path: path, Config: cfg, Timeout: callTimeout})
			if err != nil {
				return err
			}
			fmt.Fprintf(e.Stdout, "[pmdaemon] added plugin %s (%s, sha256 %s)\n", row.Name, strings.Join(row.Kinds, "+"), short(row.SHA256))
			return e.printPlugins(ctx, c)
		},
	}
	cmd.Flags().StringVar(&configJSON, "config", "", "the plugin's configuration, a JSON document")
	cmd.Flags().StringVar(&configFile, "config-file", "", "read the plugin's configuration from this JSON file")
	cmd.Flags().StringVar(&timeout, "timeout", "", "bound on each call to the plugin (default 2s)")
	return cmd
}

// pluginConfig reads --config or --config-file and checks that it is one JSON document.
func pluginConfig(inline, file string) (json.RawMessage, error) {
	if inline != "" && file != "" {
		return nil, fmt.Errorf("give --config or --config-file, not both")
	}
	src, b := "--config", []byte(inline)
	if file != "" {
		var err error
		if b, err = os.ReadFile(file); err != nil {
			return nil, fmt.Errorf("--config-file: %v", err)
		}
		src = file
	}
	if len(strings.TrimSpace(string(b))) == 0 {
		return nil, nil
	}
	var v any
	dec := json.NewDecoder(strings.NewReader(string(b)))
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("%s is not valid JSON: %v", src, jsonDetail(b, err))
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("%s is not valid JSON: unexpected data after the document", src)
	}
	return json.RawMessage(b), nil
}

// jsonDetail adds where a syntax error is.
func jsonDetail(b []byte, err error) string {
	if se, ok := err.(*json.SyntaxError); ok {
		return fmt.Sprintf("%v (at byte %d)", se, se.Offset)
	}
	if err == io.ErrUnexpectedEOF || err == io.EOF {
		return "the document ends too early"
	}
	return err.Error()
}

func short(sum string) string {
	if len(sum) > 12 {
		return sum[:12]
	}
	return sum
}

func (e *Env) pluginListCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List registered plugins: name, kind, path, sha256, status",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			c, err := e.client(ctx)
			if err != nil {
				return err
			}
			if asJSON {
				rows, err := c.Plugins(ctx)
				if err != nil {
					return err
				}
				enc := json.NewEncoder(e.Stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(rows)
			}
			return e.printPlugins(ctx, c)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func (e *Env) printPlugins(ctx context.Context, c *api.Client) error {
	rows, err := c.Plugins(ctx)
	if err != nil {
		return err
	}
	return RenderPlugins(e.Stdout, rows)
}

// RenderPlugins prints the plugin table.
func RenderPlugins(w io.Writer, rows []api.PluginRow) error {
	t := newTable(w)
	t.Header("Name", "Kind", "Path", "SHA256", "Status")
	for _, r := range rows {
		if err := t.Append([]string{r.Name, strings.Join(r.Kinds, "+"), r.Path, short(r.SHA256), r.Status}); err != nil {
			return err
		}
	}
	return t.Render()
}

func (e *Env) pluginRemoveCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "remove NAME",
		Aliases: []string{"rm"},
		Short:   "Unregister a plugin and stop it",
		Args:    oneName,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			c, err := e.client(ctx)
			if err != nil {
				return err
			}
			if err := c.RemovePlugin(ctx, args[0]); err != nil {
				return err
			}
			fmt.Fprintf(e.Stdout, "[pmdaemon] removed plugin %s\n", args[0])
			return e.printPlugins(ctx, c)
		},
	}
}

func (e *Env) pluginTrustCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "trust NAME",
		Short: "Pin a plugin's binary as it is now (after you upgraded it), keeping its config",
		Args:  oneName,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			c, err := e.client(ctx)
			if err != nil {
				return err
			}
			row, err := c.TrustPlugin(ctx, args[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(e.Stdout, "[pmdaemon] plugin %s now pinned to sha256 %s\n", row.Name, short(row.SHA256))
			return e.printPlugins(ctx, c)
		},
	}
}

func oneName(cmd *cobra.Command, args []string) error {
	if len(args) != 1 {
		return fmt.Errorf("plugin %s takes one NAME, got %d arguments", cmd.Name(), len(args))
	}
	return nil
}

// warn prints the warnings an answer carried.
func (e *Env) warn(ws []string) {
	for _, w := range ws {
		fmt.Fprintf(e.Stderr, "[pmdaemon] warning: %s\n", w)
	}
}
