package models_test

import (
	"testing"

	"github.com/dispatcherhq/dispatcher/models"
)

// TestSQLiteFile names the file of each form of sqlite: URL that Open
// takes, and none for an in-memory database or another URL. Before, a
// file: URI was taken for a path, and commands refused a database that
// was there.
func TestSQLiteFile(t *testing.T) {
	for url, want := range map[string]string{
		"sqlite:dispatcher.db":                      "dispatcher.db",
		"sqlite:/var/lib/d.db?_pragma=x":            "/var/lib/d.db",
		"sqlite:///var/lib/d.db":                    "/var/lib/d.db",
		"sqlite:file:/var/lib/d.db?cache=shared":    "/var/lib/d.db",
		"sqlite:file:///var/lib/d.db":               "/var/lib/d.db",
		"sqlite:file:rel.db":                        "rel.db",
		"sqlite::memory:":                           "",
		"sqlite:file::memory:":                      "",
		"sqlite:file:x.db?mode=memory&cache=shared": "",
		"postgres://u@h/db":                         "",
	} {
		got, ok := models.SQLiteFile(url)
		if got != want || ok != (want != "") {
			t.Errorf("SQLiteFile(%q) = %q, %v; want %q", url, got, ok, want)
		}
	}
}
