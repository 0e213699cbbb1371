package dispatch

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	commonpb "go.temporal.io/api/common/v1"
	failurepb "go.temporal.io/api/failure/v1"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"google.golang.org/protobuf/proto"

	"github.com/dispatcherhq/dispatcher"
	"github.com/dispatcherhq/dispatcher/encryption"
)

// Metadata of an encrypted payload. The encoding is the one Temporal's
// samples and tools use for encrypted payloads; the cipher entry tells the
// dispatcher's own apart from those of another codec in the namespace
// (a temporal task function's worker may have one), which it leaves
// alone.
const (
	encodingEncrypted = "binary/encrypted"
	metaCipher        = "encryption-cipher"
	metaKeyID         = "encryption-key-id"
	cipherName        = "dispatcher/AES-256-GCM/v1"
)

// payloadAAD binds the ciphertext to its use: an encrypted column of the
// database does not decrypt as a payload, nor the other way round.
var payloadAAD = []byte("dispatcher temporal payload v1")

// PayloadCodec encrypts Temporal payloads with a key ring: workflow and
// activity inputs and results, local activity markers, queries, memos,
// failure details and (with FailureConverter) failure messages. Search
// attributes never pass through a codec, and stay readable to
// visibility. Payloads it did not encrypt — histories from before
// encryption was turned on — decode as they are.
//
// The inputs of temporal task functions (child workflows) stay in clear
// text: their own worker reads them, as an http function reads its call,
// and it does not hold the dispatcher's keys.
type PayloadCodec struct {
	keys  *encryption.KeyRing
	clear bool // encode nothing: a serialization context of a task function's workflow
}

// NewPayloadCodec returns the codec encrypting with keys' current key and
// decrypting with any of them; with nil keys, encrypting nothing and
// decrypting nothing (its errors wrap encryption.ErrNoKeys).
func NewPayloadCodec(keys *encryption.KeyRing) *PayloadCodec {
	return &PayloadCodec{keys: keys}
}

// DataConverter returns the data converter of every Temporal client of
// the dispatcher: the default one, with payloads encrypted by keys. With
// nil keys it encrypts nothing, and a payload it finds encrypted fails
// as one under an unknown key does (encryption.ErrNoKeys): a worker whose
// key was not given leaves the dispatch to one that has it.
func DataConverter(keys *encryption.KeyRing) converter.DataConverter {
	return keyedConverter{DataConverter: converter.NewCodecDataConverter(converter.GetDefaultDataConverter(), NewPayloadCodec(keys))}
}

// keyedConverter is the encrypting data converter, told by the SDK when
// workflow code uses it (converter.ContextAware). There, a payload
// encrypted with a key this process lacks panics instead of failing: the
// SDK fails the workflow task, which Temporal retries until a worker with
// the key takes it. The error failed the dispatch for good (its input
// unreadable): one worker left without a new key in a rollout failed every
// dispatch it took. A payload that does not decrypt with the key of its id
// still fails: retrying would not help when its writer had other key
// material under that id, and would hold a Sequence's whole key behind
// one signal. Elsewhere (the API reading histories) both fail, as before.
type keyedConverter struct {
	converter.DataConverter
	inWorkflow bool
}

// WithWorkflowContext implements converter.ContextAware.
func (c keyedConverter) WithWorkflowContext(converter.WorkflowContext) converter.DataConverter {
	return keyedConverter{DataConverter: c.DataConverter, inWorkflow: true}
}

// WithContext implements converter.ContextAware.
func (c keyedConverter) WithContext(context.Context) converter.DataConverter { return c }

// WithSerializationContext implements
// converter.DataConverterWithSerializationContext.
func (c keyedConverter) WithSerializationContext(sc converter.SerializationContext) converter.DataConverter {
	return keyedConverter{DataConverter: converter.WithDataConverterSerializationContext(c.DataConverter, sc), inWorkflow: c.inWorkflow}
}

// FromPayload implements converter.DataConverter.
func (c keyedConverter) FromPayload(p *commonpb.Payload, v any) error {
	return c.keyed(c.DataConverter.FromPayload(p, v))
}

// FromPayloads implements converter.DataConverter.
func (c keyedConverter) FromPayloads(p *commonpb.Payloads, v ...any) error {
	return c.keyed(c.DataConverter.FromPayloads(p, v...))
}

func (c keyedConverter) keyed(err error) error {
	if c.inWorkflow && missingKey(err) {
		panic(fmt.Sprintf("a payload cannot be decrypted: %v; this worker's workflow tasks fail, and are retried, until a worker with the key takes them: give every process the same DISPATCHER_ENCRYPTION_KEY", err))
	}
	return err
}

// missingKey reports whether err is that of a payload encrypted with a
// key this process lacks.
func missingKey(err error) bool {
	return errors.Is(err, encryption.ErrUnknownKey) || errors.Is(err, encryption.ErrNoKeys)
}

// undecryptable reports whether err is that of a payload this process
// cannot decrypt: a key it lacks, or one that does not open it.
func undecryptable(err error) bool {
	return missingKey(err) || errors.Is(err, encryption.ErrDecrypt)
}

// storeDown reports whether err, reading the configuration, is the
// store's outage, which passes, and not a function this process cannot
// decrypt, which lasts.
func storeDown(err error) bool {
	return dispatcher.ErrorCode(err) == dispatcher.EUNAVAILABLE && !undecryptable(err)
}

// unreadable is the error of a history whose payloads this process
// cannot decrypt (err, undecryptable): it lacks a key the workers have,
// which may come (EUNAVAILABLE), or a payload does not decrypt with the
// key of its id, which no retry mends (ESTATE).
func unreadable(err error) error {
	if !missingKey(err) {
		return dispatcher.Errorf(dispatcher.ESTATE, "the dispatch's history cannot be decrypted: %v", err)
	}
	return dispatcher.Errorf(dispatcher.EUNAVAILABLE,
		"the dispatch's history cannot be decrypted: %v; give this process the keys the workers have (DISPATCHER_ENCRYPTION_KEY)", err)
}

// FailureConverter returns the failure converter that goes with
// DataConverter: with keys, failure messages and stack traces travel
// encrypted too (Temporal keeps them in the history, where error texts —
// an SMTP answer, a function's response — would otherwise be readable).
func FailureConverter(keys *encryption.KeyRing) converter.FailureConverter {
	if keys == nil {
		return temporal.GetDefaultFailureConverter()
	}
	return cloningFailureConverter{temporal.NewDefaultFailureConverter(temporal.DefaultFailureConverterOptions{
		DataConverter: DataConverter(keys), EncodeCommonAttributes: true,
	})}
}

// cloningFailureConverter decodes a copy of each failure. The SDK's
// converter decrypts the message into the failure it is given (SDK
// v1.50), and a local activity's failure is that same message, which
// then went into the history's marker in clear text.
type cloningFailureConverter struct{ converter.FailureConverter }

// FailureToError implements converter.FailureConverter.
func (c cloningFailureConverter) FailureToError(f *failurepb.Failure) error {
	if f == nil {
		return nil
	}
	return c.FailureConverter.FailureToError(proto.Clone(f).(*failurepb.Failure))
}

// Encode implements converter.PayloadCodec.
func (c *PayloadCodec) Encode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	if c.clear || c.keys == nil {
		return payloads, nil
	}
	out := make([]*commonpb.Payload, len(payloads))
	for i, p := range payloads {
		b, err := proto.Marshal(p)
		if err != nil {
			return payloads, err
		}
		id, sealed, err := c.keys.Seal(b, payloadAAD)
		if err != nil {
			return payloads, err
		}
		out[i] = &commonpb.Payload{
			Metadata: map[string][]byte{
				converter.MetadataEncoding: []byte(encodingEncrypted),
				metaCipher:                 []byte(cipherName),
				metaKeyID:                  []byte(id),
			},
			Data: sealed,
		}
	}
	return out, nil
}

// Decode implements converter.PayloadCodec. Errors name the key and wrap
// encryption.ErrUnknownKey or ErrDecrypt.
func (c *PayloadCodec) Decode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	var out []*commonpb.Payload // a copy once one is encrypted: most are not, without keys
	for i, p := range payloads {
		md := p.GetMetadata()
		if string(md[converter.MetadataEncoding]) != encodingEncrypted || string(md[metaCipher]) != cipherName {
			continue
		}
		if out == nil {
			out = slices.Clone(payloads)
		}
		b, err := c.keys.Open(string(md[metaKeyID]), p.GetData(), payloadAAD)
		if err != nil {
			return payloads, err
		}
		out[i] = &commonpb.Payload{}
		if err := proto.Unmarshal(b, out[i]); err != nil {
			return payloads, err
		}
	}
	if out == nil {
		return payloads, nil
	}
	return out, nil
}

// WithSerializationContext implements
// converter.PayloadCodecWithSerializationContext: payloads of a temporal
// task function's workflow are left in clear text.
func (c *PayloadCodec) WithSerializationContext(ctx converter.SerializationContext) converter.PayloadCodec {
	wf, ok := ctx.(converter.WorkflowSerializationContext)
	if !ok || !functionWorkflowID(wf.WorkflowID) {
		return c
	}
	return &PayloadCodec{keys: c.keys, clear: true}
}

// functionWorkflowID reports whether id is that of a temporal task
// function's workflow: the action's idempotency key, "<dispatch workflow
// ID>/<dispatcher id>/<action id>[/replay-<id>]" (workflows.Dispatch).
// The dispatcher's own workflow IDs — dispatches, with or without a
// tenant, and bulk replays — never hold a "/".
func functionWorkflowID(id string) bool {
	return strings.Contains(id, "/")
}
