package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dispatcherhq/dispatcher"
	"github.com/dispatcherhq/dispatcher/internal/testenv"
	"github.com/dispatcherhq/dispatcher/models"
)

// TestAuditVerifyCommand: `dispatcher audit verify` passes on an intact
// trail, printing each chain's head, and fails naming the record once
// one is edited; --tenant walks one chain.
func TestAuditVerifyCommand(t *testing.T) {
	url := testenv.SQLite(t)
	db, err := models.Open(url)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := models.Migrate(context.Background(), db); err != nil {
		t.Fatal(err)
	}
	store := models.NewStore(db, time.Now)
	for i, tenant := range []string{"", "", "acme"} {
		ctx := dispatcher.WithCaller(context.Background(), dispatcher.Caller{Subject: "ann", Tenant: tenant})
		if err := store.CreateTemplate(ctx, &dispatcher.Template{Name: fmt.Sprint("t", i), Subject: "Hi", Text: "Hello"}); err != nil {
			t.Fatal(err)
		}
	}
	verify := func(args ...string) (string, error) {
		var out bytes.Buffer
		err := run(t.Context(), append([]string{"audit", "verify"}, args...), func(k string) string {
			return map[string]string{"DATABASE_URL": url}[k]
		}, &out, &out)
		return out.String(), err
	}

	out, err := verify()
	if err != nil || !strings.Contains(out, "audit trail intact: 3 records in 2 chain(s)") ||
		!strings.Contains(out, `tenant "": head seq 2 hash `) || !strings.Contains(out, `tenant "acme": head seq 1 hash `) {
		t.Fatalf("verify: %v\n%s", err, out)
	}
	if out, err := verify("--tenant", "acme"); err != nil || !strings.Contains(out, "1 records in 1 chain(s)") {
		t.Fatalf("verify --tenant acme: %v\n%s", err, out)
	}
	// A tenant misspelt, or no tenant's name. Before, "audit trail
	// intact: 0 records in 1 chain(s)".
	if out, err := verify("--tenant", "acmee"); err == nil || !strings.Contains(err.Error(), `tenant "acmee" has no audit trail`) {
		t.Fatalf("verify --tenant acmee: %v\n%s", err, out)
	}
	if out, err := verify("--tenant", "bad tenant"); err == nil || !strings.Contains(err.Error(), "not a tenant's name") {
		t.Fatalf("verify --tenant 'bad tenant': %v\n%s", err, out)
	}

	if err := db.Exec("UPDATE audit_log SET target = 'elsewhere' WHERE tenant = '' AND seq = 2").Error; err != nil {
		t.Fatal(err)
	}
	out, err = verify()
	if err == nil || !strings.Contains(err.Error(), `broken at record 2 of tenant ""`) ||
		!strings.Contains(out, `BROKEN: tenant "", record 2: its fields do not hash`) {
		t.Fatalf("verify after an edit: %v\n%s", err, out)
	}
	// The other tenant's chain is intact.
	if out, err := verify("--tenant", "acme"); err != nil {
		t.Fatalf("verify --tenant acme after an edit elsewhere: %v\n%s", err, out)
	}
}

// TestDatabaseCommandsNameAMissingSQLiteFile: audit verify, encryption
// rotate and migrate --status work on an install's database; a SQLite file that is not there
// (DATABASE_URL unset is ./dispatcher.db, or misspelt) is named, not
// created empty. Before, verify answered "no such table: audit_log" and
// left an empty database behind.
func TestDatabaseCommandsNameAMissingSQLiteFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nowhere.db")
	env := map[string]string{"DATABASE_URL": "sqlite:" + path, "DISPATCHER_ENCRYPTION_KEY": "k1:" + strings.Repeat("A", 43) + "="}
	for _, args := range [][]string{{"audit", "verify"}, {"encryption", "rotate"}, {"migrate", "--status"}} {
		var out bytes.Buffer
		err := run(t.Context(), args, func(k string) string { return env[k] }, &out, &out)
		if err == nil || !strings.Contains(err.Error(), "no database at "+path) {
			t.Errorf("dispatcher %v: %v\n%s\nwant an error naming the missing file", args, err, out.String())
		}
		if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("dispatcher %v created %s", args, path)
		}
	}
}
