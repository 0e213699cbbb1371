package models_test

import (
	"context"
	"database/sql"
	"errors"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/dispatcherhq/dispatcher"
	"github.com/dispatcherhq/dispatcher/encryption"
	"github.com/dispatcherhq/dispatcher/internal/testenv"
	"github.com/dispatcherhq/dispatcher/models"
)

// keyRing parses a key ring setting, failing the test on error.
func keyRing(t *testing.T, entries ...string) *encryption.KeyRing {
	t.Helper()
	r, err := encryption.ParseKeyRing(strings.Join(entries, ","))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func generateKey(t *testing.T, id string) string {
	t.Helper()
	k, err := encryption.GenerateKey(id)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// rawFunction reads a function's stored secret and headers columns as
// they are, past the store.
func rawFunction(t *testing.T, db *sql.DB, id string) (secret string, headers sql.NullString) {
	t.Helper()
	// $1 works on PostgreSQL and SQLite alike.
	if err := db.QueryRow("SELECT secret, headers FROM functions WHERE id = $1", id).Scan(&secret, &headers); err != nil {
		t.Fatal(err)
	}
	return secret, headers
}

// TestFunctionSecretsEncryptedAtRest walks a deployment through turning
// encryption on and rotating its key: rows written in clear text before
// keep reading, new ones are stored encrypted, rotation moves every row
// to the new key, and a process with the wrong keys says which key it
// lacks instead of reading garbage.
func TestFunctionSecretsEncryptedAtRest(t *testing.T) {
	for name, url := range map[string]func(testing.TB) string{"postgres": testenv.Postgres, "sqlite": testenv.SQLite} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			db, err := models.Open(url(t))
			if err != nil {
				t.Fatal(err)
			}
			sqlDB, err := db.DB()
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { sqlDB.Close() })
			if _, err := models.Migrate(ctx, db); err != nil {
				t.Fatal(err)
			}
			k1, k2 := generateKey(t, "k1"), generateKey(t, "k2")

			// Before encryption: clear text, as before this feature.
			plain := models.NewStore(db, tick())
			legacy := dispatcher.Function{Name: "legacy", URL: "http://127.0.0.1:9/", Secret: "legacy-secret",
				Headers: map[string]string{"X-Legacy": "legacy-header"}}
			if err := plain.CreateFunction(ctx, &legacy); err != nil {
				t.Fatal(err)
			}
			if s, h := rawFunction(t, sqlDB, legacy.ID); s != "legacy-secret" || !strings.Contains(h.String, "legacy-header") {
				t.Fatalf("without keys the columns are %q, %q; want clear text", s, h.String)
			}
			// Another tenant's function: rotation covers every tenant.
			acme := dispatcher.WithCaller(ctx, dispatcher.Caller{Tenant: "acme"})
			tenants := dispatcher.Function{Name: "legacy", URL: "http://127.0.0.1:9/", Secret: "acme-secret",
				Headers: map[string]string{"X-Acme": "acme-header"}}
			if err := plain.CreateFunction(acme, &tenants); err != nil {
				t.Fatal(err)
			}

			// Encryption on: new values are stored encrypted, old ones read.
			s1 := models.NewStore(db, tick(), models.WithKeys(keyRing(t, k1)))
			fresh := dispatcher.Function{Name: "fresh", URL: "http://127.0.0.1:9/", Secret: "fresh-secret",
				Headers: map[string]string{"X-Api-Key": "fresh-header"}}
			if err := s1.CreateFunction(ctx, &fresh); err != nil {
				t.Fatal(err)
			}
			noSecret := dispatcher.Function{Name: "open", URL: "http://127.0.0.1:9/"}
			if err := s1.CreateFunction(ctx, &noSecret); err != nil {
				t.Fatal(err)
			}
			assertEncrypted(t, sqlDB, fresh.ID, "k1", "fresh-secret", "fresh-header", "X-Api-Key")
			if s, h := rawFunction(t, sqlDB, noSecret.ID); s != "" || h.Valid {
				t.Errorf("a function without secret or headers stores %q, %v; want empty and NULL", s, h)
			}
			assertFunction(t, s1, fresh)
			assertFunction(t, s1, legacy)
			secret := "rotated-by-user"
			if err := errOf(s1.UpdateFunction(ctx, fresh.ID, dispatcher.FunctionUpdate{Secret: &secret}, time.Time{})); err != nil {
				t.Fatal(err)
			}
			fresh.Secret = secret
			assertEncrypted(t, sqlDB, fresh.ID, "k1", secret, "fresh-header", "X-Api-Key")
			assertFunction(t, s1, fresh)

			// An envelope is bound to its row: copied to another, it
			// does not decrypt.
			copied, _ := rawFunction(t, sqlDB, fresh.ID)
			if _, err := sqlDB.Exec("UPDATE functions SET secret = $1 WHERE id = $2", copied, noSecret.ID); err != nil {
				t.Fatal(err)
			}
			if _, err := s1.FindFunction(ctx, noSecret.ID); !errors.Is(err, encryption.ErrDecrypt) {
				t.Errorf("a secret copied from another row: %v, want ErrDecrypt", err)
			}
			if _, err := sqlDB.Exec("UPDATE functions SET secret = '' WHERE id = $1", noSecret.ID); err != nil {
				t.Fatal(err)
			}

			// Rotation: k2 in front, k1 still there to read.
			s2 := models.NewStore(db, tick(), models.WithKeys(keyRing(t, k2, k1)))
			assertFunction(t, s2, fresh)
			var progress []models.RotationReport
			dry, err := s2.RotateSecrets(ctx, models.RotateOptions{DryRun: true, Progress: func(r models.RotationReport) { progress = append(progress, r) }})
			if err != nil {
				t.Fatal(err)
			}
			if want := (models.RotationReport{Functions: 4, Rotated: 3, Current: 1}); dry != want || len(progress) == 0 || progress[len(progress)-1] != want {
				t.Fatalf("dry run: %+v (progress %+v), want %+v", dry, progress, want)
			}
			if s, _ := rawFunction(t, sqlDB, legacy.ID); s != "legacy-secret" {
				t.Fatalf("the dry run wrote: %q", s)
			}
			rep, err := s2.RotateSecrets(ctx, models.RotateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if want := (models.RotationReport{Functions: 4, Rotated: 3, Current: 1}); rep != want {
				t.Fatalf("rotation: %+v, want %+v", rep, want)
			}
			assertEncrypted(t, sqlDB, fresh.ID, "k2", secret, "fresh-header", "X-Api-Key")
			assertEncrypted(t, sqlDB, legacy.ID, "k2", "legacy-secret", "legacy-header", "X-Legacy")
			assertEncrypted(t, sqlDB, tenants.ID, "k2", "acme-secret", "acme-header", "X-Acme")
			assertFunction(t, s2, fresh)
			assertFunction(t, s2, legacy)
			if again, err := s2.RotateSecrets(ctx, models.RotateOptions{}); err != nil || again.Rotated != 0 || again.Current != 4 {
				t.Errorf("a second rotation: %+v, %v; want nothing left to do", again, err)
			}
			// Once rotated, k1 alone is no longer needed for the rows.
			assertFunction(t, models.NewStore(db, tick(), models.WithKeys(keyRing(t, k2))), legacy)

			// Processes with the wrong keys fail, saying why.
			for _, tt := range []struct {
				name string
				s    *models.Store
				want error
				msg  string
			}{
				{"no keys", plain, encryption.ErrNoKeys, `secret: encrypted with key "k2", but DISPATCHER_ENCRYPTION_KEY is not set`},
				{"only the old key", s1, encryption.ErrUnknownKey, `encrypted with key "k2": the key is not in DISPATCHER_ENCRYPTION_KEY (it holds k1)`},
				{"another key called k2", models.NewStore(db, tick(), models.WithKeys(keyRing(t, generateKey(t, "k2")))), encryption.ErrDecrypt, `encrypted with key "k2": does not decrypt`},
			} {
				_, err := tt.s.FindFunction(ctx, legacy.ID)
				if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.msg) || !strings.Contains(err.Error(), legacy.ID) {
					t.Errorf("%s: %v; want %v saying %q and naming the function", tt.name, err, tt.want, tt.msg)
				}
				// A 503 that says what to do; before, a 500 "internal error"
				// for the function and every list it was in.
				if dispatcher.ErrorCode(err) != dispatcher.EUNAVAILABLE || !strings.Contains(err.Error(), "give this process the keys") {
					t.Errorf("%s: %v is %q, want %q saying what to do", tt.name, err, dispatcher.ErrorCode(err), dispatcher.EUNAVAILABLE)
				}
				if _, err := tt.s.FindFunctions(ctx, []string{legacy.ID}); dispatcher.ErrorCode(err) != dispatcher.EUNAVAILABLE {
					t.Errorf("%s: FindFunctions: %v, want %q", tt.name, err, dispatcher.EUNAVAILABLE)
				}
				if _, err := tt.s.FindFunctions(ctx, []string{legacy.ID}); !errors.Is(err, tt.want) {
					t.Errorf("%s: FindFunctions: %v, want %v", tt.name, err, tt.want)
				}
			}
			if _, err := plain.RotateSecrets(ctx, models.RotateOptions{}); err == nil || !strings.Contains(err.Error(), "DISPATCHER_ENCRYPTION_KEY is not set") {
				t.Errorf("rotation without keys: %v", err)
			}
			if _, err := s1.RotateSecrets(ctx, models.RotateOptions{}); !errors.Is(err, encryption.ErrUnknownKey) {
				t.Errorf("rotation with a ring that lacks k2: %v, want ErrUnknownKey", err)
			}
		})
	}
}

// assertEncrypted checks that the function's stored columns are
// envelopes under key and hold none of the readable values.
func assertEncrypted(t *testing.T, db *sql.DB, id, key string, readable ...string) {
	t.Helper()
	secret, headers := rawFunction(t, db, id)
	for col, v := range map[string]string{"secret": secret, "headers": headers.String} {
		if !strings.HasPrefix(v, "enc:v1:"+key+":") {
			t.Errorf("function %s: stored %s %q, want an envelope under %s", id, col, v, key)
		}
		for _, r := range readable {
			if strings.Contains(v, r) {
				t.Errorf("function %s: stored %s %q contains %q", id, col, v, r)
			}
		}
	}
}

// assertFunction checks that s reads want's secret and headers.
func assertFunction(t *testing.T, s *models.Store, want dispatcher.Function) {
	t.Helper()
	got, err := s.FindFunction(context.Background(), want.ID)
	if err != nil {
		t.Fatalf("FindFunction(%s): %v", want.Name, err)
	}
	if got.Secret != want.Secret || !maps.Equal(got.Headers, want.Headers) {
		t.Errorf("%s reads secret %q headers %v, want %q %v", want.Name, got.Secret, got.Headers, want.Secret, want.Headers)
	}
	byName, err := s.FindFunctionByName(context.Background(), want.Name)
	if err != nil || byName.Secret != want.Secret {
		t.Errorf("FindFunctionByName(%s): %q, %v", want.Name, byName.Secret, err)
	}
}

// TestFunctionSecretLikeAnEnvelope: a secret that reads as encrypted is
// refused, with keys or without. Before, one stored without keys was read
// back as an envelope, and every read of its tenant's functions failed.
func TestFunctionSecretLikeAnEnvelope(t *testing.T) {
	for name, url := range map[string]func(testing.TB) string{"postgres": testenv.Postgres, "sqlite": testenv.SQLite} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			db := migratedTo(t, url(t), allMigrations)
			for _, s := range []*models.Store{models.NewStore(db, tick()), models.NewStore(db, tick(), models.WithKeys(keyRing(t, generateKey(t, "k1"))))} {
				f := dispatcher.Function{Name: "pe", URL: "http://127.0.0.1:9/", Secret: "enc:v1:zz:AAAA"}
				if err := s.CreateFunction(ctx, &f); dispatcher.ErrorCode(err) != dispatcher.EINVALID || !strings.Contains(err.Error(), "secret:") {
					t.Fatalf("create with an envelope for a secret: %v, want EINVALID naming secret", err)
				}
				f.Secret = "fine"
				if err := s.CreateFunction(ctx, &f); err != nil {
					t.Fatal(err)
				}
				bad := "enc:v1:k1:AAAA"
				if err := errOf(s.UpdateFunction(ctx, f.ID, dispatcher.FunctionUpdate{Secret: &bad}, time.Time{})); dispatcher.ErrorCode(err) != dispatcher.EINVALID {
					t.Fatalf("update with an envelope for a secret: %v, want EINVALID", err)
				}
				if got, err := s.FindFunction(ctx, f.ID); err != nil || got.Secret != "fine" {
					t.Fatalf("after the refused update: %+v, %v; want the secret as it was", got, err)
				}
				if err := s.DeleteFunction(ctx, f.ID, time.Time{}); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}
