package dispatch_test

import (
	"encoding/base64"
	"encoding/binary"
	"hash/crc32"
	"strings"
	"testing"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// The API's page tokens wrap Temporal's with a checksum; a client that
// knows the scheme can write its own.
func rawToken(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) < 5 {
		t.Fatalf("page token %q: %v", s, err)
	}
	return b[:len(b)-4]
}

func apiToken(b []byte) string {
	return base64.RawURLEncoding.EncodeToString(binary.BigEndian.AppendUint32(append([]byte{}, b...), crc32.ChecksumIEEE(b)))
}

// withField appends bytes field num (last one wins) to a token.
func withField(tok []byte, num protowire.Number, v []byte) []byte {
	out := protowire.AppendTag(append([]byte{}, tok...), num, protowire.BytesType)
	return protowire.AppendBytes(out, v)
}

// A page token of the run's own history, with events written into it
// for Temporal to append to the page (transient_workflow_task, field 7),
// reads the run's history alone: before, Temporal appended them and the
// API decoded them, which made it a decryption oracle for any payload a
// caller held. A running dispatch whose history grows between pages still
// pages on.
func TestHistoryPageTokensCarryNothingButTheirPlace(t *testing.T) {
	e := newExecutionsEnv(t)
	res := e.dispatch("ev-token", "hello", true)
	first, err := e.ex.History(e.ctx(), res.WorkflowID, res.RunID, 1, "")
	if err != nil || first.NextPageToken == "" {
		t.Fatalf("first page: token %q, %v", first.NextPageToken, err)
	}
	ev, err := proto.Marshal(&historypb.HistoryEvent{
		EventId: 1000, EventType: enumspb.EVENT_TYPE_MARKER_RECORDED,
		Attributes: &historypb.HistoryEvent_MarkerRecordedEventAttributes{MarkerRecordedEventAttributes: &historypb.MarkerRecordedEventAttributes{
			MarkerName: "injected-marker",
			Details:    map[string]*commonpb.Payloads{"x": {Payloads: []*commonpb.Payload{{Data: []byte(`"injected"`)}}}},
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	transient := protowire.AppendBytes(protowire.AppendTag(nil, 3, protowire.BytesType), ev) // TransientWorkflowTaskInfo.history_suffix
	page, err := e.ex.History(e.ctx(), res.WorkflowID, res.RunID, 1000, apiToken(withField(rawToken(t, first.NextPageToken), 7, transient)))
	if err != nil {
		t.Fatalf("the next page: %v", err)
	}
	for _, ev := range page.Events {
		if strings.Contains(string(ev), "injected-marker") {
			t.Fatalf("an event written into the page token came back: %s", ev)
		}
	}
	if len(page.Events) == 0 || strings.Contains(string(page.Events[0]), "WORKFLOW_EXECUTION_STARTED") {
		t.Errorf("the next page: %d events, from the start", len(page.Events))
	}

	// A running dispatch, signaled between its pages.
	mine := e.dispatch("ev-token-later", "later", false)
	p1, err := e.ex.History(e.ctx(), mine.WorkflowID, mine.RunID, 1, "")
	if err != nil || p1.NextPageToken == "" {
		t.Fatalf("first page of the running dispatch: %v", err)
	}
	for range 3 {
		if err := e.c.SignalWorkflow(e.ctx(), mine.WorkflowID, mine.RunID, "noise", nil); err != nil {
			t.Fatal(err)
		}
	}
	p2, err := e.ex.History(e.ctx(), mine.WorkflowID, mine.RunID, 1000, p1.NextPageToken)
	signals := 0
	for _, ev := range p2.Events {
		if strings.Contains(string(ev), `"signalName":"noise"`) {
			signals++
		}
	}
	if err != nil || signals != 3 {
		t.Errorf("the running dispatch's next page: %d events, %d of the 3 signals, %v", len(p2.Events), signals, err)
	}
}
