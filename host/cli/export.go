package cli

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/pmdaemon/pmdaemon/host/export"
	"github.com/pmdaemon/pmdaemon/host/export/kube"
	"github.com/pmdaemon/pmdaemon/host/export/nomad"
)

// exportOptions are the flags of `export`.
type exportOptions struct {
	format string
	image  string
	only   string
}

func (e *Env) exportCmd() *cobra.Command {
	var o exportOptions
	cmd := &cobra.Command{
		Use:   "export nomad|kubernetes [FILE]",
		Short: "Write a Nomad job or Kubernetes objects for an ecosystem file's apps, or for the running apps",
		Long: "Write a Nomad job (HCL, or the API's JSON with --format json) or Kubernetes objects (YAML; --image is\n" +
			"required) for the apps of FILE (.json, .json5, .lua, or PM2's ecosystem.config.js), or for the apps the\n" +
			"daemon runs when no FILE is given. What cannot be carried over is listed on stderr (docs/scaling-out.md).",
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			file := ""
			if len(args) == 2 {
				file = args[1]
			}
			return e.export(cmd.Context(), args[0], file, o, cmd.Flags().Changed("format"))
		},
	}
	cmd.Flags().StringVar(&o.format, "format", "hcl", "nomad only: hcl (a jobspec) or json (the HTTP API's {\"Job\": ...})")
	cmd.Flags().StringVar(&o.image, "image", "", "the container image that holds the apps (required for kubernetes; with nomad, tasks use the docker driver)")
	cmd.Flags().StringVar(&o.only, "only", "", "export only the app of this name")
	return cmd
}

// export checks the flags against the target before anything is read, then loads the apps,
// writes the document to stdout and the report to stderr.
func (e *Env) export(ctx context.Context, target, file string, o exportOptions, formatSet bool) error {
	switch target {
	case "nomad":
		if o.format != "hcl" && o.format != "json" {
			return fmt.Errorf("--format %q is not known: use hcl or json", o.format)
		}
	case "kubernetes", "k8s":
		if formatSet {
			return fmt.Errorf("--format %s is for nomad: a kubernetes export is always YAML", o.format)
		}
		if strings.TrimSpace(o.image) == "" {
			return fmt.Errorf("export kubernetes needs --image IMAGE: a pod runs containers, and a pmdaemon app is a command on this machine with no image; build one that holds the apps at the same paths (docs/scaling-out.md)")
		}
	default:
		return fmt.Errorf("unknown export target %q: use nomad or kubernetes", target)
	}
	src, err := e.exportSource(ctx, file)
	if err != nil {
		return err
	}
	if err := src.Only(o.only); err != nil {
		return err
	}
	var out []byte
	var report export.Report
	if target == "nomad" {
		out, report, err = exportNomad(src, o)
	} else {
		out, report, err = kube.Export(src, kube.Options{Image: o.image})
	}
	if err != nil {
		return err
	}
	src.Merge(report)
	for _, line := range src.Changed {
		fmt.Fprintf(e.Stderr, "[pmdaemon] note: %s\n", line)
	}
	for _, line := range src.Dropped {
		fmt.Fprintf(e.Stderr, "[pmdaemon] not carried over: %s\n", line)
	}
	_, err = e.Stdout.Write(out)
	return err
}

// exportSource loads the apps of file, or of the running daemon without one. It never starts
// a daemon: with none running there is nothing to export.
func (e *Env) exportSource(ctx context.Context, file string) (*export.Source, error) {
	c, running := e.existingClient(ctx)
	if file != "" {
		opts := export.FileOptions{Log: e.Stderr}
		if running {
			opts.Client = c // a Lua script's read-only queries, as in run --dry-run
		}
		return export.FromFile(ctx, file, opts)
	}
	if !running {
		return nil, fmt.Errorf("no pmdaemon daemon runs at %s: nothing to export; give an ecosystem file, or start the apps first", e.Home)
	}
	return export.FromDaemon(ctx, c)
}

func exportNomad(src *export.Source, o exportOptions) ([]byte, export.Report, error) {
	job, report, err := nomad.Build(src, nomad.Options{Image: o.image})
	if err != nil {
		return nil, report, err
	}
	var out []byte
	if o.format == "json" {
		out, err = nomad.JSON(job)
	} else {
		out, err = nomad.HCL(job)
	}
	return out, report, err
}
