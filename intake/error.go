package intake

// Kind says how a message fails as a whole, as opposed to one of its
// fields (a field error is a *dispatcher.Error naming the field).
type Kind int

const (
	// EmptyBody: there is nothing to read an event from.
	EmptyBody Kind = iota + 1
	// BodyFormat: the body is not what its envelope needs (not JSON,
	// not a JSON object, not a CloudEvent).
	BodyFormat
)

// Error is a message the intake refuses as a whole. Message says why and
// is safe to show to whoever sent it.
type Error struct {
	Kind    Kind
	Message string
}

func (e *Error) Error() string { return e.Message }
