// Command dispatcher runs the event dispatcher: the HTTP API, the Temporal
// worker, or both, plus the migrate and token tools. It only wires
// packages together; configuration comes from the environment.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/signal"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/dispatcherhq/dispatcher/internal/redact"
	"github.com/dispatcherhq/dispatcher/wire"
)

func main() {
	// A hang-up (the terminal closed) stops gracefully too, rather than
	// killing the process in the middle of its first attempts; unless it
	// is ignored (nohup), which asking for it would undo.
	sigs := []os.Signal{os.Interrupt, syscall.SIGTERM}
	if !signal.Ignored(syscall.SIGHUP) {
		sigs = append(sigs, syscall.SIGHUP)
	}
	ctx, stop := signal.NotifyContext(context.Background(), sigs...)
	// The first signal stops gracefully; the next one, the default way,
	// at once. Before, later signals went nowhere while the process
	// drained (up to minutes), and Ctrl-C pressed again did nothing. One
	// within a second of the first is that one delivered twice (a closed
	// terminal's SIGHUP, from the shell and the kernel; a wrapper passing
	// on the SIGTERM its group got too) and goes nowhere still.
	context.AfterFunc(ctx, func() { time.AfterFunc(time.Second, stop) })
	stderr := forTerminal(os.Stderr)
	err := run(ctx, os.Args[1:], os.Getenv, forTerminal(os.Stdout), stderr)
	var status exitStatus
	switch {
	case errors.As(err, &status):
		os.Exit(int(status))
	case err != nil:
		fmt.Fprintln(stderr, "dispatcher:", err)
		os.Exit(1)
	}
}

// exitStatus is a command's exit status other than 0 and 1 when it did
// what it was asked and has nothing to say on standard error
// (sync --dry-run --exit-code).
type exitStatus int

func (s exitStatus) Error() string { return fmt.Sprintf("exit status %d", int(s)) }

// run executes the command line args with the environment getenv.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	root := &cobra.Command{
		Use:           "dispatcher",
		Short:         "Temporal-based event dispatcher",
		Long:          "dispatcher runs mail and task actions for every event it receives, durably, on Temporal.\nConfiguration comes from environment variables: see `dispatcher config`.",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	// The processes log the warnings (processCmd); the tools say them.
	root.PersistentPreRun = func(cmd *cobra.Command, _ []string) {
		if cmd.Annotations[annotationProcess] == "" {
			for _, w := range misnamed(environ()) {
				fmt.Fprintln(stderr, "dispatcher: warning:", w)
			}
		}
	}
	root.SetFlagErrorFunc(suggestFlag)
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.AddCommand(
		processCmd("serve", "Run the API and the worker in one process (fastest: eager workflow start)", getenv, stdout, true, true),
		processCmd("api", "Run the HTTP API only", getenv, stdout, true, false),
		processCmd("worker", "Run the Temporal worker only", getenv, stdout, false, true),
		migrateCmd(getenv),
		auditCmd(getenv),
		tokenCmd(getenv),
		configCmd(getenv),
		versionCmd(getenv),
		executionsCmd(getenv),
		replayCmd(getenv),
		apikeysCmd(getenv),
		encryptionCmd(getenv),
		syncCmd(getenv),
		exportCmd(getenv),
	)
	for _, c := range root.Commands() {
		refuseUnknown(c)
	}
	return root.ExecuteContext(ctx)
}

// suggestFlag adds to an unknown flag's error the flag of cmd it nearly
// spells (--stauts: did you mean --status?).
func suggestFlag(cmd *cobra.Command, err error) error {
	name, ok := strings.CutPrefix(err.Error(), "unknown flag: --")
	if !ok {
		return err
	}
	var near []string
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		if wire.Nearly(name, f.Name) {
			near = append(near, "--"+f.Name)
		}
	})
	if len(near) == 0 {
		return fmt.Errorf("%w; see %s --help", err, cmd.CommandPath())
	}
	return fmt.Errorf("%w; did you mean %s?", err, strings.Join(near, " or "))
}

// refuseUnknown makes c, and each group under it, answer an unknown
// subcommand with an error, as the root does; cobra has a group print its
// help and succeed, which a script or CI would not notice.
func refuseUnknown(c *cobra.Command) {
	if !c.HasSubCommands() {
		return
	}
	c.SuggestionsMinimumDistance = 2 // as the root's
	if c.Run == nil && c.RunE == nil {
		c.RunE = func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
					return fmt.Errorf("unknown command %q for %q; did you mean %s?", args[0], cmd.CommandPath(), strings.Join(s, " or "))
				}
				return fmt.Errorf("unknown command %q for %q; see %s --help", args[0], cmd.CommandPath(), cmd.CommandPath())
			}
			return cmd.Help()
		}
	}
	for _, sub := range c.Commands() {
		refuseUnknown(sub)
	}
}

// configCmd prints every setting with its current value (secrets hidden),
// or with --markdown the README's configuration table.
func configCmd(getenv func(string) string) *cobra.Command {
	var markdown bool
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Show every environment variable, its value and what it does",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			out := cmd.OutOrStdout()
			if markdown {
				fmt.Fprint(out, configTable())
				return nil
			}
			// Shown also when a value is wrong: that is when it is read.
			cfg, err := loadConfig(getenv)
			if err == nil {
				err = blankSharedNames(environ(), cfg)
			}
			width := 0
			for _, s := range settings {
				width = max(width, len(s.name))
			}
			for _, s := range settings {
				v, src := strings.TrimSpace(getenv(s.name)), "set" // blank is unset, as loadConfig reads it
				switch {
				case v == "" && getenv(s.name+"_FILE") != "" && slices.Contains(secretSettings, s.name):
					// Not shown: it may be another secret's file.
					v, src = "(in "+getenv(s.name+"_FILE")+")", "file"
				case v == "":
					v, src = s.def, "default"
				default:
					v = redacted(s.name, v)
				}
				fmt.Fprintf(out, "%-*s %-8s %s\n    %s\n", width, s.name, src, v, s.doc)
			}
			return err
		},
	}
	cmd.Flags().BoolVar(&markdown, "markdown", false, "print the defaults as the README's markdown table")
	return cmd
}

// redacted hides secrets in a setting's value: the JWT secret, the
// Temporal API key and the encryption keys whole (the keys' ids show),
// the password of URLs that carry one, in their user information or their
// query (?password=, ?token=), and of PostgreSQL's key=value form.
func redacted(name, v string) string {
	if v == "" {
		return v
	}
	// A NATS cluster is comma-separated URLs, split as nats.go splits
	// them, each with its own password, and nats:// where a URL has no
	// scheme, as nats.go reads it. Other settings are not split: a comma
	// may be part of a password there.
	if name == "DISPATCHER_NATS_URL" {
		urls := strings.Split(v, ",")
		for i, u := range urls {
			if u = strings.TrimSpace(u); !strings.Contains(u, "://") {
				u = "nats://" + u
			}
			urls[i] = redactedValue(name, u)
		}
		return strings.Join(urls, ",")
	}
	return redactedValue(name, v)
}

// redactedValue is redacted for one value (one URL of a NATS list).
func redactedValue(name, v string) string {
	switch name {
	case "DISPATCHER_JWT_SECRET", "TEMPORAL_API_KEY", "DISPATCHER_METRICS_TOKEN":
		return "(hidden)"
	case "DISPATCHER_ENCRYPTION_KEY":
		return keyIDs(v)
	}
	urlSetting := name == "" || strings.HasSuffix(name, "_URL") || strings.HasSuffix(name, "_ENDPOINT")
	raw := v
	if urlSetting && schemeless(v) {
		// url.Parse took the user for the scheme and the rest for opaque
		// data, and Redacted hid nothing of it.
		raw = "//" + v
	}
	if u, err := url.Parse(raw); err == nil && (u.Scheme != "" || raw != v) {
		if redact.Ambiguous(raw) != nil || urlSetting && (strings.Contains(u.Opaque, "@") || strings.ContainsAny(u.Host, "= ;")) {
			return "(hidden: not a valid URL)" // a host of password=… or ;password=…
		}
		if u.User != nil {
			password, hasPassword := u.User.Password()
			if raw != v || !hasPassword && name != "" && name != "DATABASE_URL" || password == u.User.Username() {
				// A token is the URL's user (NATS, a collector's, a
				// broker's or an SMTP server's; or user and password, as
				// Postmark's SMTP has it), not PostgreSQL's, whose password
				// may be in the query; without a scheme, who knows.
				u.User = url.User("xxxxx")
			}
		}
		if masked := keyValueSecret.ReplaceAllString(u.Path, "${1}=xxxxx"); masked != u.Path { // a path's ;password=…
			u.Path, u.RawPath = masked, ""
		}
		if q := u.Query(); len(q) > 0 {
			for k := range q {
				if secretParam(k) {
					q.Set(k, "xxxxx")
				}
			}
			u.RawQuery = q.Encode()
		}
		return strings.TrimPrefix(u.Redacted(), "//")
	}
	if strings.Contains(v, "@") && (strings.Contains(v, "://") || urlSetting && !strings.Contains(v, "=")) ||
		urlSetting && strings.Contains(v, "://") { // it does not parse: amqp://user:password, no host
		return "(hidden: not a valid URL)"
	}
	return keyValueSecret.ReplaceAllString(v, "${1}=xxxxx")
}

// schemeless reports whether v is a URL written without its scheme
// (user:password@host…), not a key=value connection string.
func schemeless(v string) bool {
	authority, _, _ := strings.Cut(v, "/")
	at := strings.LastIndex(authority, "@")
	return at >= 0 && !strings.Contains(v, "://") && !strings.ContainsAny(v, " \t") && !strings.ContainsAny(authority[:at], "?#=")
}

// keyValueSecret is a password in PostgreSQL's key=value connection
// string ("host=db password='a b'").
var keyValueSecret = regexp.MustCompile(`(?i)\b(password|sslpassword)\s*=\s*('(?:[^'\\]|\\.)*'|\S+)`)

// secretParam reports whether a URL's query parameter named k holds a
// secret.
func secretParam(k string) bool {
	k = strings.ToLower(k)
	for _, s := range []string{"pass", "secret", "token", "apikey", "api_key"} { // pass: password, passwd, SQLite's _auth_pass
		if strings.Contains(k, s) {
			return true
		}
	}
	return false
}

// configTable is the README's configuration table.
func configTable() string {
	var b strings.Builder
	b.WriteString("| Variable | Default | What it does |\n|---|---|---|\n")
	for _, s := range settings {
		def := "—"
		if s.def != "" {
			def = "`" + s.def + "`"
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s |\n", s.name, def, s.doc)
	}
	return b.String()
}
