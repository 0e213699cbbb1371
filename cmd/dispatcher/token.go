package main

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
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
				return errors.New("DISPATCHER_JWT_SECRET is not set: tokens are signed with it; set it to the server's (under make run, the file .run/jwt-secret)")
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
	ttl = time.Hour
	cmd.Flags().Var((*days)(&ttl), "ttl", "how long the token is valid: a duration (90m, 24h) or whole days (7d)")
	cmd.Flags().StringVar(&tenant, "tenant", "", "the tenant the token acts for (its configuration, events and executions); empty: the implicit tenant")
	return cmd
}

// days is a duration flag that takes whole days too (7d), as --expires
// and --from do: before, --ttl 1d was refused.
type days time.Duration

func (d *days) String() string { return time.Duration(*d).String() }
func (d *days) Type() string   { return "duration" }
func (d *days) Set(v string) error {
	p, err := parseDuration(v)
	if err != nil || p <= 0 {
		return errors.New("want a positive duration such as 90m or 24h, or whole days such as 7d")
	}
	*d = days(p)
	return nil
}

// parseDuration reads a Go duration (90m, 24h) or whole days (7d, up to
// 100 years), as every flag and setting that takes a duration does.
func parseDuration(v string) (time.Duration, error) {
	if n, ok := strings.CutSuffix(strings.ToLower(v), "d"); ok {
		if k, err := strconv.Atoi(n); err == nil && k >= -36500 && k <= 36500 {
			return time.Duration(k) * 24 * time.Hour, nil
		}
	}
	return time.ParseDuration(v)
}
