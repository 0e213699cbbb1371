// Command probe is the container health check of the dispatcher image. It
// GETs a URL (default http://127.0.0.1:8080/readyz) and exits 0 when the
// answer is 2xx, 1 otherwise. The image is distroless, with no shell or curl,
// and compose health checks run a command inside the container; Kubernetes
// probes the HTTP endpoints itself and does not need it.
//
// It is its own module so it stays out of the service's go.mod and build.
package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"time"
)

// defaultURL is the readiness endpoint of a dispatcher listening on :8080.
const defaultURL = "http://127.0.0.1:8080/readyz"

func main() {
	if err := run(os.Args[1:], 5*time.Second); err != nil {
		fmt.Fprintln(os.Stderr, "probe:", err)
		os.Exit(1)
	}
}

// run checks the URL in args (or defaultURL) within timeout.
func run(args []string, timeout time.Duration) error {
	url := defaultURL
	switch len(args) {
	case 0:
	case 1:
		url = args[0]
	default:
		return fmt.Errorf("usage: probe [URL]")
	}
	c := http.Client{Timeout: timeout}
	res, err := c.Get(url)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(res.Body, 512))
	if res.StatusCode/100 != 2 {
		return fmt.Errorf("%s answered %s: %s", url, res.Status, body)
	}
	return nil
}
