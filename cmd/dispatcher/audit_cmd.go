package main

import (
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/dispatcherhq/dispatcher"
	"github.com/dispatcherhq/dispatcher/models"
)

// auditCmd groups the audit trail's commands.
func auditCmd(getenv func(string) string) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Check the audit trail (DATABASE_URL)",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(auditVerifyCmd(getenv))
	return cmd
}

// auditVerifyCmd walks the audit trail's hash chains and fails on the
// first break.
func auditVerifyCmd(getenv func(string) string) *cobra.Command {
	var tenant string
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Check that no audit record was edited, deleted, inserted or moved",
		Long: "verify walks each tenant's audit chain in the database (DATABASE_URL), recomputing every record's hash,\n" +
			"and reports the first break: the record, and what differs. It exits 1 when the trail is broken (also when a --tenant has no records, or the database fails).\n" +
			"It prints each chain's head (last seq and hash): kept elsewhere, a head proves later that the chain\n" +
			"was not rewritten up to it.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(getenv)
			if err != nil {
				return err
			}
			db, err := openExisting(cfg.DatabaseURL)
			if err != nil {
				return err
			}
			opts := models.VerifyOptions{}
			if cmd.Flags().Changed("tenant") {
				if !dispatcher.ValidTenant(tenant) {
					return fmt.Errorf("--tenant %q: not a tenant's name (letters, digits, _ and -, at most 64)", tenant)
				}
				opts.Tenant = &tenant
			}
			out, progress := cmd.OutOrStdout(), cmd.ErrOrStderr()
			var finish func()
			opts.Progress, finish = verifyProgress(progress)
			v, err := models.NewStore(db, time.Now).VerifyAudit(cmd.Context(), opts)
			finish()
			if err != nil {
				return err
			}
			if b := v.Break; b != nil {
				fmt.Fprintf(out, "BROKEN: tenant %q, record %d: %s\n", b.Tenant, b.Seq, b.Reason)
				fmt.Fprintf(out, "checked %d records before the break\n", v.Records)
				return fmt.Errorf("the audit trail is broken at record %d of tenant %q", b.Seq, b.Tenant)
			}
			if opts.Tenant != nil && v.Records == 0 {
				// A misspelt tenant read as a trail intact.
				return fmt.Errorf("tenant %q has no audit trail; without --tenant, verify lists each tenant's chain", tenant)
			}
			fmt.Fprintf(out, "audit trail intact: %d records in %d chain(s)\n", v.Records, v.Chains)
			printHeads(out, v.Heads)
			return nil
		},
	}
	cmd.Flags().StringVar(&tenant, "tenant", "", "verify only this tenant's chain (\"\" is the implicit tenant); default: every tenant's")
	return cmd
}

// verifyProgress shows how far a verification got: a bar on a terminal,
// otherwise a line at most every few seconds, so a small trail prints
// nothing and a large one shows it is moving. finish ends the display.
func verifyProgress(w io.Writer) (progress func(done, total int64), finish func()) {
	if raw := rawTerminal(w); raw != nil {
		var bar *progressbar.ProgressBar
		return func(done, total int64) {
				if bar == nil {
					bar = progressbar.NewOptions64(total, progressbar.OptionSetWriter(raw), progressbar.OptionShowCount(),
						progressbar.OptionSetDescription("verifying"), progressbar.OptionSetPredictTime(true),
						progressbar.OptionSetWidth(30), progressbar.OptionThrottle(100*time.Millisecond))
				}
				_ = bar.Set64(done)
			}, func() {
				if bar != nil {
					_ = bar.Finish()
					fmt.Fprintln(w)
				}
			}
	}
	last := time.Now()
	return func(done, total int64) {
		if time.Since(last) >= 5*time.Second {
			fmt.Fprintf(w, "verified %d of %d records\n", done, total)
			last = time.Now()
		}
	}, func() {}
}

// printHeads lists each chain's head, by tenant.
func printHeads(w io.Writer, heads map[string]dispatcher.AuditHead) {
	tenants := make([]string, 0, len(heads))
	for t := range heads {
		tenants = append(tenants, t)
	}
	slices.Sort(tenants)
	for _, t := range tenants {
		fmt.Fprintf(w, "  tenant %q: head seq %d hash %s\n", t, heads[t].Seq, heads[t].Hash)
	}
}
