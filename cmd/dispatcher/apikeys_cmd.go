package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/dispatcherhq/dispatcher/wire"
)

// apikeysCmd makes, lists and revokes API keys through the API
// (/apikeys/v1), for producers and automation.
func apikeysCmd(getenv func(string) string) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "apikeys",
		Short: "Make, list and revoke API keys for producers and automation (talks to the API)",
	}
	client := clientFlags(cmd, getenv)
	cmd.AddCommand(apikeysCreateCmd(client), apikeysListCmd(client), apikeysRevokeCmd(client))
	return cmd
}

func apikeysCreateCmd(client func() (*apiClient, error)) *cobra.Command {
	var (
		name, expires   string
		perms, types    []string
		asJSON          bool
		permissionsHelp = "permissions of the key, comma-separated: those the token holds (CREATE_EVENTS for a producer)"
	)
	cmd := &cobra.Command{
		Use:   "create --name NAME --permissions P[,P…]",
		Short: "Make an API key (CREATE_APIKEYS); the key is printed once, on stdout",
		Long: "Makes an API key in the token's tenant, holding permissions the token holds. The key itself is\n" +
			"printed once, alone on stdout, and never again (the dispatcher keeps its hash): store it at once.\n" +
			"What was made goes to stderr.",
		Example: "  dispatcher apikeys create --name billing --permissions CREATE_EVENTS --event-types invoice_paid --expires 90d\n" +
			"  KEY=$(dispatcher apikeys create --name ci --permissions VIEW_EXECUTIONS --expires 2027-06-30)",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if strings.TrimSpace(name) == "" {
				return fmt.Errorf("--name: a key needs a name, to tell it from the others when it is listed or revoked")
			}
			if len(perms) == 0 {
				return fmt.Errorf("--permissions: a key needs at least one (%s)", permissionsHelp)
			}
			for i, p := range perms { // as dispatcher token takes them
				perms[i] = strings.ToUpper(strings.TrimSpace(p))
			}
			req := map[string]any{"name": name, "permissions": perms}
			if len(types) > 0 {
				req["eventTypes"] = types
			}
			if expires != "" {
				at, err := expiresArg(expires, time.Now())
				if err != nil {
					return err
				}
				req["expiresAt"] = at
			}
			c, err := client()
			if err != nil {
				return err
			}
			var k wire.APIKey
			raw, err := c.do(cmd.Context(), "POST", "/apikeys/v1", nil, req, &k)
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), raw)
			}
			fmt.Fprintln(cmd.OutOrStdout(), k.Key)
			fmt.Fprintf(cmd.ErrOrStderr(), "made API key %s %q: %s%s, expires %s\nthe key, printed on standard output, is shown this once: store it now; revoke it with: dispatcher apikeys revoke %s\n",
				k.ID, k.Name, strings.Join(k.Permissions, ","), eventTypesNote(k.EventTypes), expiry(k.ExpiresAt), k.ID)
			return nil
		},
	}
	cmd.Flags().StringVar(&name, "name", "", "what the key is for (required)")
	cmd.Flags().StringSliceVar(&perms, "permissions", nil, permissionsHelp+" (required)")
	cmd.Flags().StringSliceVar(&types, "event-types", nil, "event types the key may send, comma-separated (default: any the token may)")
	cmd.Flags().StringVar(&expires, "expires", "", "when the key stops working: a duration from now (90d, 720h), an ISO-8601 date-time or a date (midnight UTC); default never")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the API's answer, the key included")
	return cmd
}

// expiresArg turns --expires into an ISO-8601 date-time: a duration (or
// a number of days, 90d) from now, a date-time, or a date's midnight UTC.
func expiresArg(v string, now time.Time) (string, error) {
	d, err := parseDuration(v)
	switch {
	case err == nil && d > 0:
		return now.Add(d).UTC().Format(time.RFC3339), nil
	case err == nil:
		return "", fmt.Errorf("--expires %q: a duration counts forward from now and must be positive", v)
	}
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t.UTC().Format(time.RFC3339Nano), nil
	}
	if t, err := time.Parse(time.DateOnly, v); err == nil {
		return t.Format(time.RFC3339), nil
	}
	return "", fmt.Errorf("--expires %q: want a duration from now (90d, 720h), an ISO-8601 date-time or a date (2027-06-30, at midnight UTC)", v)
}

func apikeysListCmd(client func() (*apiClient, error)) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:     "list",
		Short:   "List the API keys of the token's tenant (VIEW_APIKEYS): never the keys themselves",
		Example: "  dispatcher apikeys list\n  dispatcher apikeys list --json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := client()
			if err != nil {
				return err
			}
			var keys []json.RawMessage
			if err := listAll(cmd.Context(), c, "/apikeys/v1", nil, func(raw json.RawMessage) error {
				keys = append(keys, raw)
				return nil
			}); err != nil {
				return err
			}
			if asJSON {
				raw, err := json.Marshal(keys)
				if err != nil {
					return err
				}
				return printJSON(cmd.OutOrStdout(), raw)
			}
			return printAPIKeys(cmd.OutOrStdout(), keys)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the keys as the API answers them")
	return cmd
}

func printAPIKeys(w io.Writer, raws []json.RawMessage) error {
	if len(raws) == 0 {
		fmt.Fprintln(w, "no API keys")
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tPERMISSIONS\tEVENT TYPES\tEXPIRES (UTC)\tCREATED BY\tLAST USED (UTC)")
	for _, raw := range raws {
		var k wire.APIKey
		if err := json.Unmarshal(raw, &k); err != nil {
			return fmt.Errorf("GET /apikeys/v1: the API answered something unexpected: %w", err)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", k.ID, k.Name, strings.Join(k.Permissions, ","),
			orDash(strings.Join(k.EventTypes, ",")), expiry(k.ExpiresAt), k.CreatedBy, millisTime(k.LastUsedTimestamp))
	}
	return tw.Flush()
}

func apikeysRevokeCmd(client func() (*apiClient, error)) *cobra.Command {
	return &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke an API key, and the keys it made (DELETE_APIKEYS): refused from the next request on",
		Long: "ID is the key's id, as `dispatcher apikeys list` shows it (not the key itself). The keys it made,\n" +
			"and theirs, are revoked with it.",
		Example: "  dispatcher apikeys revoke 665f0c2e9b1d4a7f8e3c2b1a",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id := strings.TrimSpace(args[0])
			if strings.HasPrefix(id, "dsp_") {
				return fmt.Errorf("ID: that is a key, not its id; `dispatcher apikeys list` shows the ids (and revoke it: it was on your command line)")
			}
			if id == "" {
				return fmt.Errorf("ID: empty; `dispatcher apikeys list` shows the ids")
			}
			c, err := client()
			if err != nil {
				return err
			}
			if _, err := c.do(cmd.Context(), "DELETE", "/apikeys/v1/"+url.PathEscape(id), nil, nil, nil); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "revoked API key %s, and the keys it made\n", id)
			return nil
		},
	}
}

// eventTypesNote says which event types a key may send, if it is held to some.
func eventTypesNote(types []string) string {
	if len(types) == 0 {
		return ""
	}
	return "; event types " + strings.Join(types, ",")
}

// expiry formats a key's expiry.
func expiry(ms *int64) string {
	if ms == nil {
		return "never"
	}
	return millisTime(ms)
}
