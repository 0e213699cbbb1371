package proc

import (
	"context"
	"fmt"
	"net/http"
	"time"
)

// WaitHTTP polls url until it answers 200 OK. It fails, with the child's
// log tail, when the child exits first or within passes (0: no limit but
// ctx's).
func (c *Child) WaitHTTP(ctx context.Context, url string, within time.Duration) error {
	if within > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, within)
		defer cancel()
	}
	hc := &http.Client{Timeout: 2 * time.Second}
	last := "no answer yet"
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		res, err := hc.Do(req)
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return nil
			}
			last = res.Status
		} else {
			last = err.Error()
		}
		select {
		case <-c.exited:
			return fmt.Errorf("%s exited (%v) before %s answered\n%s", c.Name, c.err, url, c.LogTail())
		case <-ctx.Done():
			return c.WithLog(ctx, fmt.Errorf("%s: %s did not answer 200 (last: %s): %w", c.Name, url, last, ctx.Err()))
		case <-time.After(50 * time.Millisecond):
		}
	}
}
