package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/dispatcherhq/dispatcher"
	"github.com/dispatcherhq/dispatcher/wire"
	"github.com/gin-gonic/gin"
)

// searches are the routes whose work grows with the runs they match: one
// past its deadline may be asked for less.
var searches = map[string]bool{"/executions/v1": true, "/executions/v1/": true, "/executions/v1/failures": true, "/executions/v1/replays": true}

// wireError is one entry of the Extra Horizon error vocabulary.
type wireError struct {
	Code   int
	Name   string
	Status int
}

// Wire errors that only the HTTP layer raises (they concern the request, not
// the domain).
//
// errNoPermission keeps Extra Horizon's code and name but not its status:
// Extra Horizon answers 401, which tells a client to authenticate again,
// though the request was authenticated and is simply not allowed. 403 says
// that (RFC 9110 §15.5.4), and clients that go by the code, as the SDK
// does, see no difference.
var (
	errNoPermission     = wireError{10, "NO_PERMISSION_EXCEPTION", http.StatusForbidden}
	errIDFormat         = wireError{12, "ID_FORMAT_EXCEPTION", http.StatusBadRequest}
	errEmptyBody        = wireError{13, "EMPTY_BODY_EXCEPTION", http.StatusBadRequest}
	errMissingFields    = wireError{14, "MISSING_REQUIRED_FIELDS_EXCEPTION", http.StatusBadRequest}
	errFieldFormat      = wireError{15, "FIELD_FORMAT_EXCEPTION", http.StatusBadRequest}
	errResourceUnknown  = wireError{16, "RESOURCE_UNKNOWN_EXCEPTION", http.StatusNotFound}
	errAlreadyExists    = wireError{17, "RESOURCE_ALREADY_EXISTS_EXCEPTION", http.StatusBadRequest}
	errInvalidRQL       = wireError{19, "INVALID_RQL_EXCEPTION", http.StatusBadRequest}
	errBodyFormat       = wireError{22, "BODY_FORMAT_EXCEPTION", http.StatusBadRequest}
	errResourceInUse    = wireError{23, "RESOURCE_IN_USE_EXCEPTION", http.StatusBadRequest}
	errBodyTooLarge     = wireError{24, "BODY_TOO_LARGE_EXCEPTION", http.StatusRequestEntityTooLarge}
	errNotAuthenticated = wireError{104, "USER_NOT_AUTHENTICATED_EXCEPTION", http.StatusUnauthorized}
	errTokenUnknown     = wireError{117, "ACCESS_TOKEN_UNKNOWN_EXCEPTION", http.StatusUnauthorized}
	errTokenExpired     = wireError{118, "ACCESS_TOKEN_EXPIRED_EXCEPTION", http.StatusUnauthorized}
	errState            = wireError{409, "ILLEGAL_STATE_EXCEPTION", http.StatusConflict}
	errPrecondition     = wireError{412, "PRECONDITION_FAILED_EXCEPTION", http.StatusPreconditionFailed}
	errTooManyRequests  = wireError{429, "TOO_MANY_REQUESTS_EXCEPTION", http.StatusTooManyRequests}
	errUnavailable      = wireError{503, "SERVICE_UNAVAILABLE_EXCEPTION", http.StatusServiceUnavailable}
	errInternal         = wireError{500, "INTERNAL_EXCEPTION", http.StatusInternalServerError}
)

// domainErrors maps domain error codes to wire errors.
var domainErrors = map[string]wireError{
	dispatcher.ECONFLICT:    errAlreadyExists,
	dispatcher.EINVALID:     errFieldFormat,
	dispatcher.EREQUIRED:    errMissingFields,
	dispatcher.ENOTFOUND:    errResourceUnknown,
	dispatcher.EQUERY:       errInvalidRQL,
	dispatcher.EINUSE:       errResourceInUse,
	dispatcher.EUNAVAILABLE: errUnavailable,
	dispatcher.ESTATE:       errState,
	dispatcher.ECHANGED:     errPrecondition,
}

// abort answers with the wire error w and message, and stops the chain.
func abort(c *gin.Context, w wireError, message string) {
	if w == errUnavailable {
		c.Header("Retry-After", "1") // a dependency down: producers wait, then try again
	}
	c.AbortWithStatusJSON(w.Status, wire.Error{Code: w.Code, Name: w.Name, Message: message})
}

// fail answers with the wire form of a domain error. Errors that are not
// the client's fault are logged with the request's context; their text
// never reaches the client.
func fail(c *gin.Context, err error) {
	w, ok := domainErrors[dispatcher.ErrorCode(err)]
	if !ok {
		w = errInternal
	}
	msg := dispatcher.ErrorMessage(err)
	if w == errUnavailable && errors.Is(c.Request.Context().Err(), context.DeadlineExceeded) {
		// The request's own deadline, not a dependency that is down:
		// before, "temporal is unavailable" for a count that outgrew it.
		msg = fmt.Sprintf("the request took longer than the %s the server gives one (Temporal or the database answered too slowly): try again", c.GetDuration(deadlineKey{}))
		if searches[c.FullPath()] {
			msg += ", or ask for less (a narrower from and to)"
		}
	}
	if w.Status >= 500 {
		// A dependency that is down (503) is a warning: every request
		// fails so until it is back, and /readyz says which. Anything
		// else is a bug of ours.
		level := slog.LevelError
		if w == errUnavailable {
			level = slog.LevelWarn
		}
		logger(c.Request.Context()).Log(c.Request.Context(), level, "request failed",
			"method", method(c.Request), "path", c.FullPath(), "err", err)
	}
	abort(c, w, msg)
}
