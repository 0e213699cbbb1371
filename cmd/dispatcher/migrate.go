package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/dispatcherhq/dispatcher/models"
	"github.com/spf13/cobra"
	"gorm.io/gorm"
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
			open := models.Open
			if status {
				open = openExisting // shows, creates nothing
			}
			db, err := open(cfg.DatabaseURL)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			// A database that takes connections but never answers
			// fails here, as serve's does, rather than hang the Job.
			pctx, cancel := context.WithTimeout(ctx, pingTimeout)
			defer cancel()
			if err := models.Ping(pctx, db, nil); err != nil {
				return pingFailed(cfg.DatabaseURL, err)
			}
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
			if current > latest {
				fmt.Fprintln(cmd.OutOrStdout(), schemaAhead)
			}
			if current < latest { // --status: nothing applied
				return fmt.Errorf("the database schema is at version %d, behind this dispatcher's %d: `dispatcher migrate` applies the rest", current, latest)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&status, "status", false, "only show the schema version, apply nothing; exits 1 while it is behind this version's")
	return cmd
}

// schemaReady fails when db's schema is older than this version needs.
func schemaReady(ctx context.Context, db *gorm.DB) error {
	current, latest, err := models.MigrationStatus(ctx, db)
	if err != nil {
		return fmt.Errorf("reading the database's schema version: %w", err)
	}
	if current < latest {
		return errSchemaBehind(current, latest)
	}
	return nil
}

// schemaAhead says what a schema newer than the binary's means.
const schemaAhead = "the schema is newer than this dispatcher's: a newer release migrated it. This one runs on it, as in a rollback, and migrates nothing; run the newer release unless you are rolling back"

func errSchemaBehind(current, latest int64) error {
	return fmt.Errorf("the database schema is at version %d, and this dispatcher needs %d: run `dispatcher migrate` "+
		"(the migrations Job, or `docker compose run --rm migrate`), or set DISPATCHER_AUTO_MIGRATE=true", current, latest)
}

// openExisting opens the database of an install, for the commands that
// work on one: a SQLite file that is not there is named, not created
// empty (DATABASE_URL unset is ./dispatcher.db, seldom the install's).
func openExisting(url string) (*gorm.DB, error) {
	if path, ok := models.SQLiteFile(url); ok {
		if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("no database at %s (DATABASE_URL=%s): set DATABASE_URL to the dispatcher's", path, url)
		}
	}
	return models.Open(url)
}
