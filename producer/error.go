package producer

import (
	"errors"
	"strings"
	"time"
)

// Sentinel errors, wrapped by *Error: compare with errors.Is.
var (
	// ErrInvalid: the event cannot be sent as it is (an empty type, data
	// that is not JSON, a type that is no NATS subject). Never retryable.
	ErrInvalid = errors.New("invalid event")
	// ErrRejected: the dispatcher or the broker refused the event for
	// good (an HTTP 4xx other than 429, a JetStream 4xx). Never retryable.
	ErrRejected = errors.New("event rejected")
	// ErrUnroutable: RabbitMQ returned the event because no queue is bound
	// to the exchange for its type. Retryable: the consumer's queue may
	// not be declared yet.
	ErrUnroutable = errors.New("no queue bound for the event")
	// ErrNacked: RabbitMQ answered the publish with a negative
	// confirmation (a full queue that rejects publishes, an internal
	// error). Retryable.
	ErrNacked = errors.New("the broker did not take the event")
	// ErrNoStream: no JetStream stream took the subject (none captures it,
	// or JetStream did not answer). Retryable.
	ErrNoStream = errors.New("no JetStream stream answered")
	// ErrClosed: the producer was closed. Never retryable.
	ErrClosed = errors.New("producer closed")
)

// Error is every error Dispatch returns: what went wrong and whether
// sending the same event again may succeed.
type Error struct {
	// Transport names the transport that failed ("http", "amqp", "nats");
	// empty when the event was refused before it was sent.
	Transport string
	// Retryable is true when the event was not taken but sending it again
	// may succeed: the broker or the dispatcher was unavailable, busy or
	// gave no answer in time. Sending it again is safe (the dispatcher
	// dispatches an event id once), as long as it keeps its id: use
	// WithID(ev.ID) and WithTime(ev.Time).
	Retryable bool
	// Status is the HTTP status of the dispatcher's answer; 0 when none.
	Status int
	// Code is the dispatcher's error code (the "code" of its error body);
	// 0 when none.
	Code int
	// RetryAfter is how long the dispatcher asked to wait (Retry-After);
	// 0 when it did not say.
	RetryAfter time.Duration
	// Message says what failed.
	Message string
	// Err is one of the sentinel errors above or the underlying error.
	Err error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("producer: ")
	if e.Transport != "" {
		b.WriteString(e.Transport + ": ")
	}
	b.WriteString(e.Message)
	if e.Err != nil {
		if e.Message != "" {
			b.WriteString(": ")
		}
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap returns Err.
func (e *Error) Unwrap() error { return e.Err }

// Retryable reports whether err, returned by Dispatch, says that sending
// the same event again (WithID(ev.ID)) may succeed.
func Retryable(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Retryable
}

// invalid is the error of an event refused before it was sent.
func invalid(transport, format string) *Error {
	return &Error{Transport: transport, Message: format, Err: ErrInvalid}
}
