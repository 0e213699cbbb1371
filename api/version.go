package api

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
)

// etag is the entity tag of a version of a dispatcher, a template or a
// function: its updateTimestamp, quoted. Every change of the record (for
// a dispatcher, of its actions too) moves it on.
func etag(updated time.Time) string {
	return `"` + strconv.FormatInt(updated.UnixMilli(), 10) + `"`
}

// setETag answers with the ETag of a record's version.
func setETag(c *gin.Context, updated time.Time) { c.Header("ETag", etag(updated)) }

// ifMatch reads the request's If-Match (RFC 9110 §13.1.1), so that a
// client's change, made on the version it read, does not overwrite a
// change it has not seen. Without one, or with "*", it returns the zero
// time: the change applies to the record as it is. Otherwise it finds
// the record's current version (find) and returns it when one of the
// listed tags is its ETag (a weak tag never is); the store checks it
// again as it writes. When none is, or find fails, it has answered
// (412, or find's error) and returns false.
func ifMatch(c *gin.Context, what, id string, find func(ctx context.Context) (time.Time, error)) (time.Time, bool) {
	values := c.Request.Header.Values("If-Match")
	if len(values) == 0 {
		return time.Time{}, true
	}
	// Present but empty (a client whose ETag was missing) names no
	// version, which none matches: not the same as no condition.
	header := strings.Join(values, ",")
	tags := strings.Split(header, ",")
	for i := range tags {
		if tags[i] = strings.TrimSpace(tags[i]); tags[i] == "*" {
			return time.Time{}, true
		}
	}
	current, err := find(c.Request.Context())
	if err != nil {
		fail(c, err)
		return time.Time{}, false
	}
	for _, tag := range tags {
		if tag == etag(current) {
			return current, true
		}
	}
	hint := ""
	switch {
	case slices.Contains(tags, "W/"+etag(current)):
		hint = " (If-Match compares strongly: a weak tag never matches; send " + etag(current) + ", without W/)"
	case slices.ContainsFunc(tags, func(tag string) bool { return tag != "" && !strings.HasSuffix(tag, `"`) }):
		hint = " (an entity tag is quoted, as the ETag header gives it: " + etag(current) + ", not " + strings.Trim(etag(current), `"`) + ")"
	}
	abort(c, errPrecondition, "If-Match: the "+what+" with id "+id+" is at version "+etag(current)+
		", which the header does not give: get it again and make the change on what it is now"+hint)
	return time.Time{}, false
}
