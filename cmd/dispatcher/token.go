package main

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/dispatcherhq/dispatcher/api"
	"github.com/spf13/cobra"
)

// tokenCmd mints a token signed with DISPATCHER_JWT_SECRET.
func tokenCmd(getenv func(string) string) *cobra.Command {
	var (
		perms   []string
		admin   bool
		subject string
		ttl     time.Duration
		tenant  string
	)
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Print a bearer token signed with DISPATCHER_JWT_SECRET",
		Example: "  dispatcher token --permissions VIEW_DISPATCHERS,CREATE_DISPATCHERS\n" +
			"  dispatcher token --admin --ttl 24h",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(getenv)
			if err != nil {
				return err
			}
			if cfg.JWTSecret == "" {
				return errors.New("DISPATCHER_JWT_SECRET is not set: tokens are signed with it")
			}
			if admin {
				perms = api.Permissions()
			}
			if len(perms) == 0 {
				return errors.New("name the permissions with --permissions A,B or use --admin")
			}
			known := api.Permissions()
			for i, p := range perms {
				perms[i] = strings.ToUpper(strings.TrimSpace(p))
				if !slices.Contains(known, perms[i]) {
					return fmt.Errorf("unknown permission %q (known: %s)", p, strings.Join(known, ", "))
				}
			}
			tok, err := api.SignToken([]byte(cfg.JWTSecret), api.TokenClaims{
				Subject: subject, Permissions: perms, TTL: ttl, Tenant: tenant,
				Issuer: cfg.JWTIssuer, Audience: cfg.JWTAudience,
			}, time.Now())
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), tok)
			return nil
		},
	}
	cmd.Flags().StringSliceVar(&perms, "permissions", nil, "permissions to grant, comma separated")
	cmd.Flags().BoolVar(&admin, "admin", false, "grant every permission")
	cmd.Flags().StringVar(&subject, "subject", "admin", "the token's subject (who it identifies)")
	cmd.Flags().DurationVar(&ttl, "ttl", time.Hour, "how long the token is valid")
	cmd.Flags().StringVar(&tenant, "tenant", "", "the tenant the token acts for (its configuration, events and executions); empty: the implicit tenant")
	return cmd
}
