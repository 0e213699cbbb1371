package main

import (
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/dispatcherhq/dispatcher/dispatch"
	"github.com/dispatcherhq/dispatcher/encryption"
	"github.com/dispatcherhq/dispatcher/models"
	"github.com/spf13/cobra"
	"go.temporal.io/sdk/converter"
)

// keyRing reads DISPATCHER_ENCRYPTION_KEY; empty leaves encryption off.
// Its errors never quote a key.
func keyRing(field func(*config) **encryption.KeyRing) func(*config, string) error {
	return func(c *config, v string) error {
		if v == "" {
			*field(c) = nil
			return nil
		}
		r, err := encryption.ParseKeyRing(v)
		if err != nil {
			return err
		}
		*field(c) = r
		return nil
	}
}

// origins reads comma-separated browser origins: scheme://host[:port],
// nothing more, as browsers send them in Origin.
func origins(field func(*config) *[]string) func(*config, string) error {
	return func(c *config, v string) error {
		var out []string
		for e := range strings.SplitSeq(v, ",") {
			if e = strings.TrimSpace(e); e == "" {
				continue
			}
			o, ok := origin(e)
			if !ok || strings.TrimSuffix(e, "/") != o {
				return fmt.Errorf("%q: want an origin such as https://temporal-ui.example.com (scheme, host and port only)", e)
			}
			out = append(out, o)
		}
		*field(c) = out
		return nil
	}
}

// origin returns the origin of an http(s) URL.
func origin(raw string) (string, bool) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		return "", false
	}
	return u.Scheme + "://" + strings.ToLower(u.Host), true
}

// defaultCodecOrigins lets the Web UI the executions link to call the
// codec endpoint; one on loopback under both its names (the Temporal CLI
// prints localhost, the default URL has 127.0.0.1).
func defaultCodecOrigins(uiURL string) []string {
	o, ok := origin(uiURL)
	if !ok {
		return nil
	}
	u, _ := url.Parse(o) // origin parsed it
	other := map[string]string{"127.0.0.1": "localhost", "localhost": "127.0.0.1"}[u.Hostname()]
	if other == "" {
		return []string{o}
	}
	if port := u.Port(); port != "" {
		other += ":" + port
	}
	u.Host = other
	return []string{o, u.String()}
}

// codecHandler serves the codec server protocol at the API's /codec/*
// with the payload codec of every client: without keys, payloads pass as
// they are, so a Web UI set up for the codec keeps working, and an
// encrypted one is refused naming its key.
func codecHandler(keys *encryption.KeyRing) http.Handler {
	return converter.NewPayloadCodecHTTPHandler(dispatch.NewPayloadCodec(keys))
}

// keyIDs describes a key ring setting for `dispatcher config` without its
// keys.
func keyIDs(v string) string {
	r, err := encryption.ParseKeyRing(v)
	if err != nil {
		return "(hidden)"
	}
	return "(hidden; key ids " + strings.Join(r.IDs(), ", ") + ", the first encrypting)"
}

// encryptionCmd groups the key tools: keygen and rotate.
func encryptionCmd(getenv func(string) string) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "encryption",
		Short: "Make encryption keys and re-encrypt stored secrets (DISPATCHER_ENCRYPTION_KEY)",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(keygenCmd(), rotateCmd(getenv))
	return cmd
}

// keygenCmd prints a new key entry for DISPATCHER_ENCRYPTION_KEY.
func keygenCmd() *cobra.Command {
	var id string
	cmd := &cobra.Command{
		Use:   "keygen",
		Short: "Print a new random key entry (id:base64key) for DISPATCHER_ENCRYPTION_KEY",
		Long: "keygen prints a new random AES-256 key as an id:base64key entry on stdout, and how to use it on stderr.\n" +
			"To rotate, put the entry in front of the current value of DISPATCHER_ENCRYPTION_KEY (see docs/operations.md).",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if id == "" {
				// Dated, and unique: two keys under one id, made on one
				// day, could not be told apart, and one decrypts nothing
				// of the other's.
				id = "k" + time.Now().UTC().Format("20060102") + "-" + rand.Text()[:6]
			}
			entry, err := encryption.GenerateKey(id)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), entry)
			fmt.Fprintf(cmd.ErrOrStderr(), "A new key %q. Keep it secret, and keep every key as long as data encrypted with it exists:\n"+
				"  first key:  DISPATCHER_ENCRYPTION_KEY=%s:…\n"+
				"  rotation:   append it, DISPATCHER_ENCRYPTION_KEY=<the keys you have>,%s:…, and roll out; then put it first and roll out;\n"+
				"              then `dispatcher encryption rotate` (docs/operations.md, \"Rotating the key\")\n", id, id, id)
			return nil
		},
	}
	cmd.Flags().StringVar(&id, "id", "", "the key's id (default: k<today's date>-<6 random characters>, e.g. k20260102-4QZ7BX)")
	return cmd
}

// rotateCmd encrypts the stored secrets again with the current key.
func rotateCmd(getenv func(string) string) *cobra.Command {
	var dryRun bool
	cmd := &cobra.Command{
		Use:   "rotate",
		Short: "Encrypt every stored function secret and header set again with the current (first) key",
		Long: "rotate reads every function and encrypts its secret and headers with the first key of DISPATCHER_ENCRYPTION_KEY when\n" +
			"they are in clear text or under another key. Processes may keep running. Temporal histories keep the keys they\n" +
			"were written with: drop an old key only when the namespace's retention has passed since it stopped encrypting.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(getenv)
			if err != nil {
				return err
			}
			if cfg.Keys == nil {
				return errors.New("DISPATCHER_ENCRYPTION_KEY is not set: there is no key to encrypt with (`dispatcher encryption keygen` makes one)")
			}
			db, err := openExisting(cfg.DatabaseURL)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			verb := "re-encrypted"
			if dryRun {
				verb = "to re-encrypt"
			}
			fmt.Fprintf(out, "current key %q; reading functions from %s\n", cfg.Keys.Current(), redactURL(cfg.DatabaseURL))
			store := models.NewStore(db, time.Now, models.WithKeys(cfg.Keys))
			if err := store.VerifyKeys(cmd.Context()); err != nil {
				return err
			}
			rep, err := store.RotateSecrets(cmd.Context(), models.RotateOptions{DryRun: dryRun, Progress: func(r models.RotationReport) {
				fmt.Fprintf(out, "  %d functions read: %d %s, %d already current or with no secret\n", r.Functions, r.Rotated, verb, r.Current)
			}})
			if err != nil {
				return fmt.Errorf("after %d functions: %w", rep.Functions, err)
			}
			fmt.Fprintf(out, "done: %d functions, %d %s, %d already current or with no secret", rep.Functions, rep.Rotated, verb, rep.Current)
			if rep.Changed > 0 {
				fmt.Fprintf(out, ", %d changed meanwhile (run again to check them)", rep.Changed)
			}
			fmt.Fprintln(out)
			if !dryRun && rep.Changed == 0 && len(cfg.Keys.IDs()) > 1 {
				fmt.Fprintf(out, "no stored secret needs %s any more; Temporal histories may, until the namespace's retention has passed\n",
					strings.Join(cfg.Keys.IDs()[1:], ", "))
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "read and decrypt everything, count what would change, write nothing")
	return cmd
}
