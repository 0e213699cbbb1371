// Command mailcatcher is the local mail catcher of `make run`: an SMTP server
// that accepts any mail and keeps the newest ones in memory, an HTTP
// endpoint /fn/{name} that task functions can point at and that keeps the
// calls it receives, and a web UI and JSON API to read both. It delivers
// nothing anywhere. Mail content is
// untrusted, so the UI escapes it and shows HTML mail in a sandboxed frame
// under a policy that forbids scripts.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "mailcatcher:", err)
		os.Exit(1)
	}
}

// run serves SMTP and the web UI until ctx is done. Every setting is a flag;
// getenv is taken only to keep the project's common run signature.
func run(ctx context.Context, args []string, _ func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("mailcatcher", flag.ContinueOnError)
	fs.SetOutput(stderr)
	smtpAddr := fs.String("smtp", "127.0.0.1:1025", "SMTP `address` that accepts any mail")
	httpAddr := fs.String("http", "127.0.0.1:8025", "`address` of the web UI and the JSON API")
	keep := fs.Int("max", 500, "keep only the newest `n` messages, and as many function calls")
	unsafeListen := fs.Bool("unsafe-listen", false, "allow non-loopback addresses (anyone who reaches them reads every caught mail)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if *keep < 1 {
		return fmt.Errorf("-max must be at least 1, not %d", *keep)
	}
	for _, addr := range []string{*smtpAddr, *httpAddr} {
		if err := checkListen(addr, *unsafeListen); err != nil {
			return err
		}
	}

	smtpLn, err := net.Listen("tcp", *smtpAddr)
	if err != nil {
		return err
	}
	httpLn, err := net.Listen("tcp", *httpAddr)
	if err != nil {
		smtpLn.Close()
		return err
	}

	logger := log.New(stdout, "mailcatcher: ", 0)
	store, calls := NewStore(*keep), NewCallStore(*keep)
	smtpSrv := newSMTPServer(store, time.Now, logger)
	handler := newHandler(store, calls, smtpLn.Addr().String())
	if !*unsafeListen {
		handler = loopbackOnly(handler)
	}
	httpSrv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          logger,
	}
	errc := make(chan error, 2)
	go func() { errc <- smtpSrv.Serve(smtpLn) }()
	go func() { errc <- httpSrv.Serve(httpLn) }()
	logger.Printf("SMTP on %s, web UI on http://%s", smtpLn.Addr(), httpLn.Addr())

	running := 2
	select {
	case <-ctx.Done():
	case err = <-errc:
		running--
		err = fmt.Errorf("server stopped: %w", err)
	}
	// Page views end gracefully; SMTP connections are cut at once, and a
	// client cut off mid-mail retries, as SMTP clients do.
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if serr := httpSrv.Shutdown(shutdownCtx); serr != nil {
		httpSrv.Close()
	}
	smtpSrv.Close()
	smtpLn.Close() // Close misses a listener that Serve has not registered yet
	for ; running > 0; running-- {
		<-errc
	}
	return err
}

// checkListen refuses addresses other than loopback unless unsafe is set:
// the catcher has no authentication, so whoever reaches it reads every mail
// (password-reset links included).
func checkListen(addr string, unsafe bool) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("listen address %q: %v", addr, err)
	}
	if unsafe || host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("refusing to listen on %s: not a loopback address, and anyone who reaches it can read every caught mail (use 127.0.0.1, or -unsafe-listen if you mean it)", addr)
}
