package models

import (
	"errors"
	"reflect"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/dispatcherhq/dispatcher"
)

// tenantTables are the tables whose rows belong to a tenant. Actions and
// tags belong to a dispatcher, and are only reached through one.
var tenantTables = map[string]bool{"dispatchers": true, "templates": true, "functions": true}

// tenancy enforces tenants once, for every statement, rather than in each
// query, which one could forget: every query, update and delete of a
// tenant table gets "<table>.tenant = <tenant>", every row created gets
// the tenant, and no update changes it. The tenant is the caller's
// (dispatcher.CallerOf) in the statement's context. Raw SQL is not
// covered; the store only uses it for tables without tenants.
func tenancy(db *gorm.DB) error {
	if db.Callback().Query().Get("dispatcher:tenant") != nil {
		return nil // registered by another Store on the same db
	}
	cb := db.Callback()
	return errors.Join(
		cb.Query().Before("gorm:query").Register("dispatcher:tenant", scopeTenant),
		cb.Row().Before("gorm:row").Register("dispatcher:tenant", scopeTenant),
		cb.Update().Before("gorm:update").Register("dispatcher:tenant", func(db *gorm.DB) {
			if tenantTables[db.Statement.Table] {
				db.Statement.Omits = append(db.Statement.Omits, "tenant")
			}
			scopeTenant(db)
		}),
		cb.Delete().Before("gorm:delete").Register("dispatcher:tenant", scopeTenant),
		cb.Create().Before("gorm:create").Register("dispatcher:tenant", setTenant),
	)
}

func tenantOf(db *gorm.DB) string { return dispatcher.CallerOf(db.Statement.Context).Tenant }

func scopeTenant(db *gorm.DB) {
	table := db.Statement.Table
	if db.Error != nil || !tenantTables[table] {
		return
	}
	db.Statement.AddClause(clause.Where{Exprs: []clause.Expression{
		clause.Eq{Column: clause.Column{Table: table, Name: "tenant"}, Value: tenantOf(db)},
	}})
}

func setTenant(db *gorm.DB) {
	if db.Error != nil || !tenantTables[db.Statement.Table] || db.Statement.Schema == nil {
		return
	}
	f := db.Statement.Schema.LookUpField("Tenant")
	if f == nil {
		_ = db.AddError(errors.New("a row of " + db.Statement.Table + " has no Tenant field"))
		return
	}
	ctx, t := db.Statement.Context, tenantOf(db)
	switch rv := db.Statement.ReflectValue; rv.Kind() {
	case reflect.Slice, reflect.Array:
		for i := range rv.Len() {
			_ = f.Set(ctx, reflect.Indirect(rv.Index(i)), t)
		}
	case reflect.Struct:
		_ = f.Set(ctx, rv, t)
	}
}
