// Command dispatcher runs the event dispatcher: the HTTP API, the Temporal
// worker, or both, plus the migrate and token tools. It only wires
// packages together; configuration comes from the environment.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "dispatcher:", err)
		os.Exit(1)
	}
}

// run executes the command line args with the environment getenv.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	root := &cobra.Command{
		Use:           "dispatcher",
		Short:         "Temporal-based event dispatcher",
		Long:          "dispatcher runs mail and task actions for every event it receives, durably, on Temporal.\nConfiguration comes from environment variables: see `dispatcher config`.",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.AddCommand(
		processCmd("serve", "Run the API and the worker in one process (fastest: eager workflow start)", getenv, stdout, true, true),
		processCmd("api", "Run the HTTP API only", getenv, stdout, true, false),
		processCmd("worker", "Run the Temporal worker only", getenv, stdout, false, true),
		migrateCmd(getenv),
		tokenCmd(getenv),
		configCmd(getenv),
	)
	return root.ExecuteContext(ctx)
}

// configCmd prints every setting with its current value (secrets hidden).
func configCmd(getenv func(string) string) *cobra.Command {
	return &cobra.Command{
		Use:   "config",
		Short: "Show every environment variable, its value and what it does",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if _, err := loadConfig(getenv); err != nil {
				return err
			}
			for _, s := range settings {
				v, src := getenv(s.name), "set"
				if v == "" {
					v, src = s.def, "default"
				}
				if s.name == "DISPATCHER_JWT_SECRET" && v != "" {
					v = "(hidden)"
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%-34s %-8s %s\n    %s\n", s.name, src, v, s.doc)
			}
			return nil
		},
	}
}
