package models

import (
	"context"

	"gorm.io/gorm"
)

// MigrateTo applies the migrations up to version, for tests of a
// migration on the data of the one before.
func MigrateTo(ctx context.Context, db *gorm.DB, version int64) error {
	p, err := provider(db)
	if err != nil {
		return err
	}
	_, err = p.UpTo(ctx, version)
	return err
}
