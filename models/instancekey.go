package models

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
)

// PageTokenKey returns the key that signs the page tokens the API hands
// out. It is the same for every process on this database, so that a token
// one process handed out is good in another: the first to ask stores a
// random one.
func (s *Store) PageTokenKey(ctx context.Context) ([]byte, error) {
	return s.instanceKey(ctx, "page_tokens")
}

// instanceKey returns the 256-bit key called name, which the first
// process to ask for it stores.
func (s *Store) instanceKey(ctx context.Context, name string) ([]byte, error) {
	fresh := make([]byte, 32)
	rand.Read(fresh)
	db := s.db.WithContext(ctx)
	if err := db.Exec("INSERT INTO instance_keys (name, material) VALUES (?, ?) ON CONFLICT (name) DO NOTHING",
		name, base64.StdEncoding.EncodeToString(fresh)).Error; err != nil {
		return nil, translate(err, "")
	}
	var stored string
	if err := db.Raw("SELECT material FROM instance_keys WHERE name = ?", name).Scan(&stored).Error; err != nil {
		return nil, translate(err, "")
	}
	key, err := base64.StdEncoding.DecodeString(stored)
	if err != nil || len(key) != len(fresh) {
		return nil, fmt.Errorf("the %s key of the database (table instance_keys) is not 32 bytes in base64: delete its row, and every process stores a new one as it starts", name)
	}
	return key, nil
}
