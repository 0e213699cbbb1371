package main

import (
	"fmt"

	"github.com/dispatcherhq/dispatcher/models"
	"github.com/spf13/cobra"
)

// migrateCmd applies the database migrations, or shows their status.
func migrateCmd(getenv func(string) string) *cobra.Command {
	var status bool
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Apply the database migrations (DATABASE_URL)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(getenv)
			if err != nil {
				return err
			}
			db, err := models.Open(cfg.DatabaseURL)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			if !status {
				n, err := models.Migrate(ctx, db)
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "applied %d migration(s)\n", n)
			}
			current, latest, err := models.MigrationStatus(ctx, db)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "schema version %d (latest %d)\n", current, latest)
			return nil
		},
	}
	cmd.Flags().BoolVar(&status, "status", false, "only show the schema version, apply nothing")
	return cmd
}
