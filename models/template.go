package models

import (
	"context"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/dispatcherhq/dispatcher"
	"github.com/dispatcherhq/dispatcher/wire"
	"gorm.io/gorm"
)

// templateRow is a row of the templates table.
type templateRow struct {
	ID                string `gorm:"primaryKey"`
	Tenant            string // set and scoped by tenancy
	Name              string
	Subject           string
	TextBody          string
	HTMLBody          string `gorm:"column:html_body"`
	CreationTimestamp int64
	UpdateTimestamp   int64
}

func (templateRow) TableName() string { return "templates" }

func toDBTemplate(t dispatcher.Template) templateRow {
	return templateRow{ID: t.ID, Name: t.Name, Subject: t.Subject, TextBody: t.Text, HTMLBody: t.HTML,
		CreationTimestamp: millis(t.Created), UpdateTimestamp: millis(t.Updated)}
}

func toTemplate(r templateRow) dispatcher.Template {
	return dispatcher.Template{ID: r.ID, Name: r.Name, Subject: r.Subject, Text: r.TextBody, HTML: r.HTMLBody,
		Created: fromMillis(r.CreationTimestamp), Updated: fromMillis(r.UpdateTimestamp)}
}

func templateConflict(name string) string {
	return fmt.Sprintf("name: a template named %q already exists", name)
}

// CreateTemplate stores t, giving it an id. It returns ECONFLICT for a
// taken name or a validation error.
func (s *Store) CreateTemplate(ctx context.Context, t *dispatcher.Template) error {
	now := s.now()
	t.ID, t.Created, t.Updated = dispatcher.NewID(now), now, now
	if err := t.Validate(); err != nil {
		return err
	}
	row := toDBTemplate(*t)
	return s.tx(ctx, func(tx *gorm.DB) error {
		if err := tx.Create(&row).Error; err != nil {
			return translate(err, templateConflict(t.Name))
		}
		if err := checkCount(tx, &templateRow{}, countLimits.templates, "templates"); err != nil {
			return err
		}
		return s.audit(ctx, tx, dispatcher.AuditTemplateCreate, t.ID, nil, wire.FromTemplate(*t))
	})
}

// FindTemplate returns the template with id, or ENOTFOUND.
func (s *Store) FindTemplate(ctx context.Context, id string) (dispatcher.Template, error) {
	var row templateRow
	if err := s.db.WithContext(ctx).Where("id = ?", id).Take(&row).Error; err != nil {
		return dispatcher.Template{}, unknown(err, "template with id %s", id)
	}
	return toTemplate(row), nil
}

// TemplateNames returns the id and name of every template, by name, and
// nothing else: what a list filters, sorts and pages on, before it loads
// the templates of its page with FindTemplates.
func (s *Store) TemplateNames(ctx context.Context) ([]dispatcher.Template, error) {
	var rows []templateRow
	if err := s.db.WithContext(ctx).Select("id", "name").Order("name").Find(&rows).Error; err != nil {
		return nil, translate(err, "")
	}
	out := make([]dispatcher.Template, len(rows))
	for i, r := range rows {
		out[i] = dispatcher.Template{ID: r.ID, Name: r.Name}
	}
	return out, nil
}

// FindTemplates returns the templates with ids, in that order; an id with
// no template (deleted since) is left out.
func (s *Store) FindTemplates(ctx context.Context, ids []string) ([]dispatcher.Template, error) {
	var rows []templateRow
	if err := s.db.WithContext(ctx).Where("id IN ?", ids).Find(&rows).Error; err != nil {
		return nil, translate(err, "")
	}
	return inOrder(ids, rows, func(r templateRow) (string, dispatcher.Template, error) { return r.ID, toTemplate(r), nil })
}

// UpdateTemplate applies u to the template with id and returns its new
// updateTimestamp. A non-zero ifUpdated applies u only to the template as
// it was last updated then, else ECHANGED.
func (s *Store) UpdateTemplate(ctx context.Context, id string, u dispatcher.TemplateUpdate, ifUpdated time.Time) (time.Time, error) {
	var at time.Time
	err := s.tx(ctx, func(tx *gorm.DB) error {
		var row templateRow
		if err := tx.Where("id = ?", id).Take(&row).Error; err != nil {
			return unknown(err, "template with id %s", id)
		}
		t := toTemplate(row)
		if err := unchanged("template", id, t.Updated, ifUpdated); err != nil {
			return err
		}
		if err := u.Apply(&t); err != nil {
			return err
		}
		t.Updated = s.later(t.Updated)
		updated := toDBTemplate(t)
		if err := tx.Model(&templateRow{}).Where("id = ?", id).Select("*").Updates(&updated).Error; err != nil {
			return translate(err, templateConflict(t.Name))
		}
		at = t.Updated
		return s.audit(ctx, tx, dispatcher.AuditTemplateUpdate, id, wire.FromTemplate(toTemplate(row)), wire.FromTemplate(t))
	})
	return at, err
}

// DeleteTemplate deletes the template with id. It returns EINUSE, naming
// the dispatchers, while a mail action still uses it, and ECHANGED when
// ifUpdated is set and the template is no longer at it.
func (s *Store) DeleteTemplate(ctx context.Context, id string, ifUpdated time.Time) error {
	return s.tx(ctx, func(tx *gorm.DB) error {
		if err := inUse(tx, "template_id = ?", id, "template"); err != nil {
			return err
		}
		var rows []templateRow // for the audit trail and ifUpdated
		if err := tx.Where("id = ?", id).Find(&rows).Error; err != nil {
			return err
		}
		if len(rows) == 1 {
			if err := unchanged("template", id, fromMillis(rows[0].UpdateTimestamp), ifUpdated); err != nil {
				return err
			}
		}
		if err := deleted(tx.Where("id = ?", id).Delete(&templateRow{}), "template", id); err != nil {
			return err
		}
		var before any
		if len(rows) == 1 {
			before = wire.FromTemplate(toTemplate(rows[0]))
		}
		return s.audit(ctx, tx, dispatcher.AuditTemplateDelete, id, before, nil)
	})
}

// inUse returns EINUSE naming, by id, the dispatchers whose actions match
// where. Not by name: the caller may delete templates or rename functions
// without VIEW_DISPATCHERS, and names say what the dispatchers do.
func inUse(tx *gorm.DB, where, arg, what string) error {
	var ids []string
	err := tx.Table("dispatchers").Distinct("dispatchers.id").
		Joins("JOIN actions ON actions.dispatcher_id = dispatchers.id").
		Where("actions."+where, arg).Order("dispatchers.id").Pluck("dispatchers.id", &ids).Error
	if err != nil || len(ids) == 0 {
		return err
	}
	return dispatcher.Errorf(dispatcher.EINUSE, "the %s is used by the actions of dispatchers %s; change or delete those actions first", what, strings.Join(ids, ", "))
}

// deleted turns a delete that matched nothing into ENOTFOUND.
func deleted(res *gorm.DB, what, id string) error {
	if res.Error != nil {
		return res.Error
	}
	if res.RowsAffected == 0 {
		return dispatcher.Errorf(dispatcher.ENOTFOUND, "Requested resource is unknown: no %s with id %s", what, id)
	}
	return nil
}

// checkReferences returns EINVALID when an action names a template or a
// function that does not exist; it runs in the transaction that saves them.
func checkReferences(tx *gorm.DB, actions []dispatcher.Action, prefix func(i int) string) error {
	for i, a := range actions {
		switch a.Type {
		case dispatcher.ActionMail:
			var n int64
			if err := tx.Model(&templateRow{}).Where("id = ?", a.TemplateID).Count(&n).Error; err != nil {
				return err
			}
			if n == 0 {
				return dispatcher.Errorf(dispatcher.EINVALID, "%stemplateId: no template with id %q; create it at /templates/v1 first", prefix(i), a.TemplateID)
			}
		case dispatcher.ActionTask:
			var n int64
			if err := tx.Model(&functionRow{}).Where("name = ?", a.FunctionName).Count(&n).Error; err != nil {
				return err
			}
			if n == 0 {
				return dispatcher.Errorf(dispatcher.EINVALID, "%sfunctionName: no function named %q; register it at /functions/v1 first", prefix(i), a.FunctionName)
			}
		}
	}
	return nil
}

// TemplateIDByName returns the id of the template named name, or ENOTFOUND.
func (s *Store) TemplateIDByName(ctx context.Context, name string) (string, error) {
	if strings.ContainsRune(name, 0) || !utf8.ValidString(name) {
		// No template has such a name, and PostgreSQL refuses to look
		// for one: before, the API answered 500.
		return "", unknown(gorm.ErrRecordNotFound, "template named %q", name)
	}
	var row templateRow
	if err := s.db.WithContext(ctx).Select("id").Where("name = ?", name).Take(&row).Error; err != nil {
		return "", unknown(err, "template named %q", name)
	}
	return row.ID, nil
}
