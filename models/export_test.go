package models

import (
	"context"
	"testing"

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

// SetCountLimits lowers the most templates and functions a tenant may
// have, for the test.
func SetCountLimits(t testing.TB, templates, functions int) {
	saved := countLimits
	countLimits.templates, countLimits.functions = templates, functions
	t.Cleanup(func() { countLimits = saved })
}
