package models_test

import (
	"context"
	"net/url"
	"testing"

	"github.com/dispatcherhq/dispatcher"
	"github.com/dispatcherhq/dispatcher/internal/testenv"
)

// A database that goes away is EUNAVAILABLE (503; the intake refuses an
// event it cannot read the configuration of, and a broker source
// requeues it), to a read and to a change, not an internal error.
// Before, only a timeout was: a refused or cut connection was a 500, and
// the intake dispatched the event without its configuration.
func TestDatabaseGoneIsUnavailable(t *testing.T) {
	u, err := url.Parse(testenv.Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	p := testenv.NewProxy(t, u.Host)
	u.Host = p.Addr
	s := newStore(t, u.String())
	if _, err := s.ConfigVersion(context.Background()); err != nil {
		t.Fatal(err)
	}
	p.Stop()
	_, err = s.ConfigVersion(context.Background())
	if code := dispatcher.ErrorCode(err); code != dispatcher.EUNAVAILABLE {
		t.Errorf("a read with the database gone: %v (code %q), want %s", err, code, dispatcher.EUNAVAILABLE)
	}
	tmpl := dispatcher.Template{Name: "bye", Subject: "Bye", Text: "Bye"}
	err = s.CreateTemplate(context.Background(), &tmpl)
	if code := dispatcher.ErrorCode(err); code != dispatcher.EUNAVAILABLE {
		t.Errorf("a change with the database gone: %v (code %q), want %s", err, code, dispatcher.EUNAVAILABLE)
	}
}
