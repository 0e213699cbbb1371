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

// MigrateDownTo rolls the migrations of db back to version.
func MigrateDownTo(ctx context.Context, db *gorm.DB, version int64) error {
	p, err := provider(db)
	if err != nil {
		return err
	}
	_, err = p.DownTo(ctx, version)
	return err
}

// SetCountLimits lowers the most dispatchers, templates and functions a
// tenant may have, for the test.
func SetCountLimits(t testing.TB, dispatchers, templates, functions int) {
	saved := countLimits
	countLimits.dispatchers, countLimits.templates, countLimits.functions = dispatchers, templates, functions
	t.Cleanup(func() { countLimits = saved })
}

// SetAPIKeyLimit lowers the most live API keys a tenant may have, for the
// test.
func SetAPIKeyLimit(t testing.TB, n int) {
	saved := countLimits.apiKeys
	countLimits.apiKeys = n
	t.Cleanup(func() { countLimits.apiKeys = saved })
}
