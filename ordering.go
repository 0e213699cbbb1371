package dispatcher

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Ordering makes the events a dispatcher acts on run strictly one after
// another, in the order the intake accepted them, per value of a key:
// the events of one user in order, different users in parallel.
type Ordering struct {
	// Key names the value events are ordered by: OrderingPartitionKey
	// (the envelope's partition key), or "content.<path>", a dotted path
	// into the event's content.
	Key string
	// OnFailure says what a dispatch that fails for good does to the
	// events after it: OrderingBlock (the default) holds them until the
	// failed one is replayed or released; OrderingSkip lets them go on.
	OnFailure string
}

// Ordering keys and failure policies.
const (
	OrderingPartitionKey = "partitionKey"
	OrderingBlock        = "block"
	OrderingSkip         = "skip"
)

// Validate checks o's key and failure policy, naming the field under
// "ordering".
func (o *Ordering) Validate() error {
	if o.Key != OrderingPartitionKey && !validContentPath(o.Key) {
		return Errorf(EINVALID, "ordering.key: must be %q or \"content.<field>[.<field>…]\", not %q", OrderingPartitionKey, o.Key)
	}
	switch o.OnFailure {
	case "":
		o.OnFailure = OrderingBlock
	case OrderingBlock, OrderingSkip:
	default:
		return Errorf(EINVALID, "ordering.onFailure: must be %q or %q, not %q", OrderingBlock, OrderingSkip, o.OnFailure)
	}
	return nil
}

func validContentPath(key string) bool {
	path, ok := strings.CutPrefix(key, "content.")
	if !ok || len(key) > 256 {
		return false
	}
	for _, f := range strings.Split(path, ".") {
		if f == "" {
			return false
		}
	}
	return true
}

// integer matches a JSON integer written without fraction or exponent.
var integer = regexp.MustCompile(`^-?(0|[1-9][0-9]*)$`)

// valueOf returns the value of o's key in ev, and whether ev has one: a
// string or a number or a boolean (a missing, null or composite value
// leaves the event unordered). An integer is its digits, however many;
// another number its shortest float64 form. rounded is the float64 form
// releases before 2026-12-05 gave an integer too, when it differs (one
// above 2^53): the key of the sequences they started for it.
func (o Ordering) valueOf(ev Event) (key, rounded string, ok bool) {
	if o.Key == OrderingPartitionKey {
		return ev.PartitionKey, "", ev.PartitionKey != ""
	}
	var v any
	dec := json.NewDecoder(bytes.NewReader(ev.Content))
	dec.UseNumber() // an id above 2^53 is not rounded onto its neighbour's key
	if err := dec.Decode(&v); err != nil {
		return "", "", false
	}
	for _, f := range strings.Split(strings.TrimPrefix(o.Key, "content."), ".") {
		m, ok := v.(map[string]any)
		if !ok {
			return "", "", false
		}
		v = m[f]
	}
	switch v := v.(type) {
	case string:
		return v, "", v != ""
	case json.Number:
		f, err := v.Float64()
		float := strconv.FormatFloat(f, 'f', -1, 64)
		switch {
		case integer.MatchString(string(v)):
			if err == nil && float != string(v) {
				rounded = float
			}
			return string(v), rounded, true
		case err != nil:
			return "", "", false
		}
		return float, "", true // 1.50, 1e2: as a float64, so that 1e2 and 100 share a key
	case bool:
		return strconv.FormatBool(v), "", true
	}
	return "", "", false
}

// Sequence says how the dispatch of an event is ordered: Key is the
// value it is ordered by, empty for an event dispatched at once, and
// Field where that value is (an Ordering's Key); Block whether its
// failure holds the events after it.
type Sequence struct {
	Field string
	Key   string
	Block bool
	// Rounded is the key releases before 2026-12-05 gave the value, an
	// integer above 2^53 rounded to a float64, when it differs (Earlier).
	Rounded string
}

// TurnKey is the sequence's key for handing events over in order
// (Turn.Wait): its field and value; "" when the event is not ordered.
func (s Sequence) TurnKey() string {
	if s.Key == "" {
		return ""
	}
	return s.Field + "\x00" + s.Key
}

// WorkflowID is the workflow ID of the sequence in a tenant: its field and
// value, hashed, so that any value makes a valid, fixed-size id that does
// not show personal data in the Temporal Web UI. Event types ordered on
// the same field share their sequences (a user's user_created runs before
// their user_deleted); those ordered on different fields do not, whatever
// their values.
func (s Sequence) WorkflowID(tenant string) string {
	sum := sha256.Sum256([]byte(s.TurnKey()))
	return TenantWorkflowID(tenant, "sequence-"+hex.EncodeToString(sum[:20]))
}

// IsSequenceWorkflowID reports whether id, of a workflow of tenant, is
// the workflow ID of a sequence (WorkflowID, LegacyWorkflowID).
func IsSequenceWorkflowID(tenant, id string) bool {
	return strings.HasPrefix(strings.TrimPrefix(id, tenant+":"), "sequence-")
}

// LegacyWorkflowID is the workflow ID releases before 2026-12-03 gave the
// sequence: its value alone, so that events ordered on different fields
// with equal values (a userId and an orderId of 42) shared one. The intake
// hands an event to the legacy sequence of its key while one runs, so that
// an upgrade keeps the order of the events it holds. Its hash is shorter
// than WorkflowID's: no value, whatever it holds, names a sequence of
// today's.
func (s Sequence) LegacyWorkflowID(tenant string) string {
	sum := sha256.Sum256([]byte(s.Key))
	return TenantWorkflowID(tenant, "sequence-"+hex.EncodeToString(sum[:16]))
}

// Earlier returns the workflow IDs of the sequences earlier releases
// started for the event's value, which keep the key while they run: the
// intake hands the event to the first that runs, so that an upgrade keeps
// the order of the events they hold. The legacy one of its value, or,
// for a value they rounded, both of the rounded value.
func (s Sequence) Earlier(tenant string) []string {
	if s.Rounded == "" {
		return []string{s.LegacyWorkflowID(tenant)}
	}
	r := Sequence{Field: s.Field, Key: s.Rounded}
	return []string{r.WorkflowID(tenant), r.LegacyWorkflowID(tenant)}
}

// BlocksOnFailure reports whether a failed dispatch of c's event type
// holds its ordering key: one of its ordered dispatchers says so.
func (c *Config) BlocksOnFailure() bool {
	return slices.ContainsFunc(c.Dispatchers, func(d Dispatcher) bool {
		return d.Ordering != nil && d.Ordering.OnFailure != OrderingSkip
	})
}

// SequenceOf returns how the dispatch of ev with c is ordered: by the key
// of c's first ordered dispatcher (the store keeps the ordered dispatchers
// of an event type on one key), blocking when any of them blocks. An
// event without a value for the key is dispatched at once.
func (c *Config) SequenceOf(ev Event) Sequence {
	for _, d := range c.Dispatchers {
		if d.Ordering == nil {
			continue
		}
		v, rounded, ok := d.Ordering.valueOf(ev)
		if !ok {
			return Sequence{}
		}
		return Sequence{Field: d.Ordering.Key, Key: v, Rounded: rounded, Block: c.BlocksOnFailure()}
	}
	return Sequence{}
}

// Turn keeps the hand-off of ordered events to Temporal in the order their
// source received them, when the source handles its messages concurrently
// (a broker's deliveries, intake.Turns): the starter calls Wait with an
// event's ordering key ("" when it has none) once it knows it, before it
// hands the event over, and hands it over once Wait returns nil.
type Turn interface {
	Wait(ctx context.Context, key string) error
}

type turnKey struct{}

// WithTurn returns ctx carrying t for the starter.
func WithTurn(ctx context.Context, t Turn) context.Context {
	return context.WithValue(ctx, turnKey{}, t)
}

// TurnOf returns the Turn ctx carries, nil if none.
func TurnOf(ctx context.Context) Turn {
	t, _ := ctx.Value(turnKey{}).(Turn)
	return t
}
