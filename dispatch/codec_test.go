package dispatch_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"

	"github.com/dispatcherhq/dispatcher/dispatch"
	"github.com/dispatcherhq/dispatcher/encryption"
)

func testKeys(t testing.TB, ids ...string) *encryption.KeyRing {
	t.Helper()
	var entries []string
	for _, id := range ids {
		k, err := encryption.GenerateKey(id)
		if err != nil {
			t.Fatal(err)
		}
		entries = append(entries, k)
	}
	r, err := encryption.ParseKeyRing(strings.Join(entries, ","))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestPayloadCodecRoundTrip(t *testing.T) {
	keys := testKeys(t, "k1")
	dc := dispatch.DataConverter(keys)
	in := map[string]string{"email": "ann@example.com"}
	p, err := dc.ToPayload(in)
	if err != nil {
		t.Fatal(err)
	}
	if string(p.Metadata["encoding"]) != "binary/encrypted" || string(p.Metadata["encryption-key-id"]) != "k1" {
		t.Errorf("metadata %q: want binary/encrypted under k1", p.Metadata)
	}
	if bytes.Contains(p.Data, []byte("ann@example.com")) || bytes.Contains(p.Data, []byte("json/plain")) {
		t.Errorf("the encrypted payload shows its content: %q", p.Data)
	}
	var out map[string]string
	if err := dc.FromPayload(p, &out); err != nil || out["email"] != "ann@example.com" {
		t.Fatalf("decoded %v, %v", out, err)
	}

	// Histories from before encryption read as they are.
	plain, err := converter.GetDefaultDataConverter().ToPayload(in)
	if err != nil {
		t.Fatal(err)
	}
	out = nil
	if err := dc.FromPayload(plain, &out); err != nil || out["email"] != "ann@example.com" {
		t.Errorf("a clear-text payload: %v, %v", out, err)
	}

	// Another codec's binary/encrypted payload is not ours to open.
	foreign := &commonpb.Payload{Metadata: map[string][]byte{"encoding": []byte("binary/encrypted"), "encryption-key-id": []byte("k1")}, Data: []byte("x")}
	codec := dispatch.NewPayloadCodec(keys)
	if got, err := codec.Decode([]*commonpb.Payload{foreign}); err != nil || got[0] != foreign {
		t.Errorf("a foreign encrypted payload: %v, %v; want it untouched", got, err)
	}

	// Rotation: a ring with a new current key still reads k1 payloads,
	// and one without k1 says which key it lacks.
	k1 := keys
	rotated := testKeys(t, "k2")
	if _, err := dispatch.NewPayloadCodec(rotated).Decode([]*commonpb.Payload{p}); !errors.Is(err, encryption.ErrUnknownKey) || !strings.Contains(err.Error(), `"k1"`) {
		t.Errorf("without k1: %v, want ErrUnknownKey naming k1", err)
	}
	impostor := testKeys(t, "k1")
	if _, err := dispatch.NewPayloadCodec(impostor).Decode([]*commonpb.Payload{p}); !errors.Is(err, encryption.ErrDecrypt) {
		t.Errorf("another key called k1: %v, want ErrDecrypt", err)
	}
	if got, err := dispatch.NewPayloadCodec(k1).Decode([]*commonpb.Payload{p}); err != nil || !bytes.Equal(got[0].Data, plain.Data) {
		t.Errorf("k1 again: %v, %v", got, err)
	}
}

// TestPayloadCodecLeavesFunctionWorkflowsInClear: a temporal task
// function's workflow runs on its own worker, which holds no key.
func TestPayloadCodecLeavesFunctionWorkflowsInClear(t *testing.T) {
	codec := dispatch.NewPayloadCodec(testKeys(t, "k1"))
	plain, err := converter.GetDefaultDataConverter().ToPayload("payload")
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		ctx       converter.SerializationContext
		encrypted bool
	}{
		{converter.WorkflowSerializationContext{WorkflowID: "dispatch-evt-1"}, true},
		{converter.WorkflowSerializationContext{WorkflowID: "dispatch.0123456789abcdef0123456789abcdef"}, true},
		{converter.WorkflowSerializationContext{WorkflowID: "bulk-replay-0123456789abcdef01234567"}, true},
		{converter.ActivitySerializationContext{WorkflowID: "dispatch-evt-1", ActivityType: "CallFunction"}, true},
		{converter.WorkflowSerializationContext{WorkflowID: "dispatch-evt-1/d1/a1"}, false},
		{converter.WorkflowSerializationContext{WorkflowID: "dispatch-evt-1/d1/a1/replay-abc"}, false},
		{converter.WorkflowSerializationContext{WorkflowID: "acme:dispatch-evt-1"}, true},
		{converter.WorkflowSerializationContext{WorkflowID: "acme:dispatch-evt-1/6b0e60e9da5d7be67f352df1/6b0e60e96a42ea2d8374619f"}, false},
	} {
		c := codec.WithSerializationContext(tt.ctx)
		got, err := c.Encode([]*commonpb.Payload{plain})
		if err != nil {
			t.Fatal(err)
		}
		if encrypted := string(got[0].Metadata["encoding"]) == "binary/encrypted"; encrypted != tt.encrypted {
			t.Errorf("%+v: encrypted %v, want %v", tt.ctx, encrypted, tt.encrypted)
		}
	}
}

func TestFailureConverterEncryptsMessages(t *testing.T) {
	keys := testKeys(t, "k1")
	fc := dispatch.FailureConverter(keys)
	f := fc.ErrorToFailure(errors.New("550 mailbox of ann@example.com unavailable"))
	if strings.Contains(f.GetMessage(), "ann@example.com") || strings.Contains(string(f.GetEncodedAttributes().GetData()), "ann@example.com") {
		t.Errorf("the failure shows its message: %q / %q", f.GetMessage(), f.GetEncodedAttributes().GetData())
	}
	if err := fc.FailureToError(f); err == nil || !strings.Contains(err.Error(), "ann@example.com") {
		t.Errorf("decoded: %v", err)
	}
	if dispatch.FailureConverter(nil).ErrorToFailure(errors.New("plain")).GetMessage() != "plain" {
		t.Error("without keys, messages should stay as they are")
	}
}
