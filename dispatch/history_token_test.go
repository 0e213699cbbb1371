package dispatch_test

import (
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"github.com/dispatcherhq/dispatcher/internal/testenv"
	"hash/crc32"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/dispatcherhq/dispatcher"
)

// apiToken wraps b as the API's page tokens are wrapped, with their
// checksum: a client that knows the scheme can write its own.
func apiToken(b []byte) string {
	return base64.RawURLEncoding.EncodeToString(binary.BigEndian.AppendUint32(append([]byte{}, b...), crc32.ChecksumIEEE(b)))
}

// A history page token is the API's own, the run and the event its page
// starts at: none of Temporal's reaches a client, so none a client writes
// reaches Temporal (which reads the history its token names, whatever run
// the request names, appends the events a token carries to the page, and
// trims a history whose token it cannot follow). Page after page, a
// running dispatch signaled between its pages reads every event once, in
// order; a token of another run, or one the API did not hand out, is
// refused before Temporal is asked.
func TestHistoryPagesAreTheRunsOwn(t *testing.T) {
	e := newExecutionsEnv(t)
	mine := e.dispatch("ev-token-later", "later", false) // waits for its start time: running
	// Once it waits: before its first workflow task, its history is two
	// events, one page of 2 with nothing after it.
	testenv.Eventually(t, 10*time.Second, func() string {
		p, err := e.ex.History(e.ctx(), mine.WorkflowID, "", 100, "")
		if err != nil || len(p.Events) < 5 {
			return fmt.Sprintf("%d events (%v), want the dispatch waiting", len(p.Events), err)
		}
		return ""
	})
	var ids []string
	token, pages := "", 0
	for ; ; pages++ {
		p, err := e.ex.History(e.ctx(), mine.WorkflowID, "", 2, token)
		if err != nil {
			t.Fatalf("page %d: %v", pages+1, err)
		}
		if len(p.Events) > 2 || p.RunID != mine.RunID {
			t.Fatalf("page %d: %d events of run %s", pages+1, len(p.Events), p.RunID)
		}
		for _, ev := range p.Events {
			id := strings.SplitN(strings.SplitN(string(ev), `"eventId":"`, 2)[1], `"`, 2)[0]
			ids = append(ids, id)
		}
		if pages == 0 {
			for range 3 { // the history grows between pages
				if err := e.c.SignalWorkflow(e.ctx(), mine.WorkflowID, mine.RunID, "noise", nil); err != nil {
					t.Fatal(err)
				}
			}
		}
		if token = p.NextPageToken; token == "" {
			break
		}
	}
	for i, id := range ids {
		if id != strconv.Itoa(i+1) {
			t.Fatalf("events in pages: %v, want 1 to %d in order", ids, len(ids))
		}
	}
	if len(ids) < 8 || pages < 3 {
		t.Errorf("%d events in %d pages, want the signals too", len(ids), pages)
	}

	other := e.dispatch("ev-token-other", "hello", true)
	p, err := e.ex.History(e.ctx(), other.WorkflowID, "", 1, "")
	if err != nil || p.NextPageToken == "" {
		t.Fatalf("the other run's first page: %v", err)
	}
	for what, call := range map[string]func() error{
		"another run's token with this run's id": func() error {
			_, err := e.ex.History(e.ctx(), mine.WorkflowID, mine.RunID, 2, p.NextPageToken)
			return err
		},
		"a token of Temporal's shape": func() error {
			_, err := e.ex.History(e.ctx(), mine.WorkflowID, "", 2, apiToken([]byte("\x0a\x24"+mine.RunID+"\x10\x05")))
			return err
		},
		// Before, the API's tokens wrapped Temporal's: with a persistence
		// token of the client's (field 6), Temporal found its history
		// "lost", answered 503 and trimmed the run's history nodes.
		"a token of this run with a persistence token of the client's": func() error {
			first, err := e.ex.History(e.ctx(), mine.WorkflowID, "", 1, "")
			if err != nil {
				return err
			}
			b, _ := base64.RawURLEncoding.DecodeString(first.NextPageToken)
			crafted := protowire.AppendBytes(protowire.AppendTag(b[:len(b)-4], 6, protowire.BytesType), []byte(`{"LastEventID":999}`))
			_, err = e.ex.History(e.ctx(), mine.WorkflowID, "", 2, apiToken(crafted))
			return err
		},
		"a token starting before the first event": func() error {
			_, err := e.ex.History(e.ctx(), mine.WorkflowID, "", 2, apiToken([]byte(mine.RunID+"/0")))
			return err
		},
	} {
		if err := call(); dispatcher.ErrorCode(err) != dispatcher.EINVALID {
			t.Errorf("%s: %v, want EINVALID", what, err)
		}
	}
	// Another run's token, for another workflow: not found, as its run id.
	if _, err := e.ex.History(e.ctx(), mine.WorkflowID, "", 2, p.NextPageToken); dispatcher.ErrorCode(err) != dispatcher.ENOTFOUND {
		t.Errorf("another workflow's token: %v, want ENOTFOUND", err)
	}
}
