package main

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/color/palette"
	"image/draw"
	"image/png"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/dispatcherhq/dispatcher/internal/testenv"
)

// browser is a headless Chromium tab on the console of a system, for
// end-to-end tests of the console as a user sees it. A script error or a
// Content-Security-Policy violation in the page fails the test.
type browser struct {
	t    *testing.T
	ctx  context.Context
	base string // the system's URL
	// shots, when set (DISPATCHER_CONSOLE_SCREENSHOTS), is the folder
	// screenshots are written to.
	shots string

	mu       sync.Mutex
	problems []string
}

// browserTimeout bounds each step of a browser test.
const browserTimeout = 45 * time.Second

// startBrowser starts Chromium for the test, with a tab on about:blank.
func startBrowser(t *testing.T, base string) *browser {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(testenv.Chromium(t)),
		chromedp.NoSandbox, // root in CI; the page is ours
		chromedp.WindowSize(1280, 800),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("lang", "en-US"),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	b := &browser{t: t, base: base, shots: os.Getenv("DISPATCHER_CONSOLE_SCREENSHOTS")}
	b.ctx = b.newTab(actx)
	return b
}

// newTab opens a tab of its own (its own session storage: signed out) in
// the browser of parent and watches it for problems.
func (b *browser) newTab(parent context.Context) context.Context {
	b.t.Helper()
	ctx, cancel := chromedp.NewContext(parent)
	b.t.Cleanup(cancel)
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		b.t.Fatalf("start chromium: %v", err)
	}
	exceptions := chromedp.Events(ctx, runtime.ExceptionThrown)
	logs := chromedp.Events(ctx, cdplog.EntryAdded)
	go func() {
		for ev, err := range exceptions {
			if err != nil {
				return
			}
			d := ev.ExceptionDetails
			msg := d.Text
			if d.Exception != nil && d.Exception.Description != "" {
				msg += " " + d.Exception.Description
			}
			b.problem("script error: " + msg)
		}
	}()
	go func() {
		for ev, err := range logs {
			if err != nil {
				return
			}
			// Refused requests (401, 403, 409) are logged by the network
			// source; the console shows them to the user.
			if e := ev.Entry; e.Level == cdplog.EntryLevelError && e.Source != cdplog.EntrySourceNetwork {
				b.problem(fmt.Sprintf("browser %s error: %s", e.Source, e.Text))
			}
		}
	}()
	return ctx
}

func (b *browser) problem(p string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.problems = append(b.problems, p)
}

// checkProblems fails the test if the page had a script error or a
// policy violation.
func (b *browser) checkProblems() {
	b.t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, p := range b.problems {
		b.t.Errorf("the console: %s", p)
	}
	b.problems = nil
}

// in returns the browser acting in tab ctx.
func (b *browser) in(ctx context.Context) *browser {
	c := &browser{t: b.t, ctx: ctx, base: b.base, shots: b.shots}
	return c
}

// do runs actions in the tab, failing the test on error.
func (b *browser) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, browserTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.t.Fatalf("%s: %v\nthe page shows:\n%s", what, err, b.pageText())
	}
}

// open shows the console's view at fragment (e.g. "/executions").
func (b *browser) open(fragment string) {
	b.t.Helper()
	b.do("open "+fragment, chromedp.Navigate(b.base+"/console#"+fragment))
}

// eval evaluates a JavaScript expression in the page through the
// DevTools protocol (which the page's policy does not restrict).
func eval[T any](b *browser, expr string, opts ...chromedp.EvaluateOption) (T, error) {
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	return chromedp.Run(ctx, chromedp.Evaluate[T](expr, opts...))
}

// waitJS waits until the JavaScript expression is true in the page.
func (b *browser) waitJS(what, expr string) {
	b.t.Helper()
	b.waitJSFor(browserTimeout, what, expr)
}

func (b *browser) waitJSFor(d time.Duration, what, expr string) {
	b.t.Helper()
	deadline := time.Now().Add(d)
	for {
		ok, err := eval[bool](b, "Boolean("+expr+")")
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("waiting %v for %s (%s): %v\nthe page shows:\n%s", d, what, expr, err, b.pageText())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// text is the text of the first element that matches the CSS selector,
// or "" when there is none.
func (b *browser) text(selector string) string {
	b.t.Helper()
	s, err := eval[string](b, "(document.querySelector("+strconv.Quote(selector)+") || {}).textContent || ''")
	if err != nil {
		b.t.Fatalf("text of %s: %v", selector, err)
	}
	return s
}

// waitText waits until the element that selector matches holds want.
func (b *browser) waitText(selector, want string) {
	b.t.Helper()
	b.waitJS(fmt.Sprintf("%s to show %q", selector, want),
		fmt.Sprintf("(document.querySelector(%s) || {}).textContent && document.querySelector(%s).textContent.includes(%s)",
			strconv.Quote(selector), strconv.Quote(selector), strconv.Quote(want)))
}

// exists says whether an element matches the CSS selector.
func (b *browser) exists(selector string) bool {
	b.t.Helper()
	ok, err := eval[bool](b, "document.querySelector("+strconv.Quote(selector)+") !== null")
	if err != nil {
		b.t.Fatalf("query %s: %v", selector, err)
	}
	return ok
}

// pageText is what the page's main region shows, for failure messages.
func (b *browser) pageText() string {
	s, err := eval[string](b, "location.hash + '\\n' + (document.querySelector('main') || document.body).innerText")
	if err != nil {
		return "(unreadable: " + err.Error() + ")"
	}
	return s
}

// signIn signs in with token, from the keyboard alone (the token, then
// Enter), and waits for the console to show who it is.
func (b *browser) signIn(token string) {
	b.t.Helper()
	b.do("sign in",
		chromedp.Navigate(b.base+"/console"),
		chromedp.WaitVisible(chromedp.ID("login-token")),
		chromedp.SendKeys(chromedp.ID("login-token"), token+kb.Enter),
		chromedp.WaitVisible(chromedp.ID("sign-out")),
	)
}

// checkLabels fails the test when a form control of the page has no
// label: every input, select and textarea must be named for a screen
// reader.
func (b *browser) checkLabels(page string) {
	b.t.Helper()
	unlabeled, err := eval[[]string](b, `[...document.querySelectorAll('input, select, textarea')]
		.filter((e) => e.type !== 'hidden' && e.labels.length === 0 && !e.getAttribute('aria-label') && !e.getAttribute('aria-labelledby'))
		.map((e) => e.id || e.name || e.outerHTML.slice(0, 60))`)
	if err != nil {
		b.t.Fatalf("labels of %s: %v", page, err)
	}
	if len(unlabeled) > 0 {
		b.t.Errorf("%s: form controls without a label: %v", page, unlabeled)
	}
}

// shot saves a screenshot of the viewport as name.png in the screenshot
// folder, when there is one.
func (b *browser) shot(name string) {
	b.t.Helper()
	if b.shots == "" {
		return
	}
	// From the top, once the last answers and the fonts have settled.
	if _, err := eval[chromedp.Void](b, "window.scrollTo(0, 0)"); err != nil {
		b.t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	ctx, cancel := context.WithTimeout(b.ctx, browserTimeout)
	defer cancel()
	shot, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	// 256 colours are plenty for the console's flat colours, and make
	// the pictures a third of the size.
	img, err := png.Decode(bytes.NewReader(shot))
	if err != nil {
		b.t.Fatal(err)
	}
	small := image.NewPaletted(img.Bounds(), palette.Plan9)
	draw.Draw(small, img.Bounds(), img, image.Point{}, draw.Src)
	var out bytes.Buffer
	if err := (&png.Encoder{CompressionLevel: png.BestCompression}).Encode(&out, small); err != nil {
		b.t.Fatal(err)
	}
	if err := os.MkdirAll(b.shots, 0o755); err != nil {
		b.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(b.shots, name+".png"), out.Bytes(), 0o644); err != nil {
		b.t.Fatal(err)
	}
}
