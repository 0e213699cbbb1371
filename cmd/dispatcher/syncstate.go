package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"

	"github.com/dispatcherhq/dispatcher"
	"github.com/dispatcherhq/dispatcher/wire"
)

// remoteState is the configuration of a running dispatcher as its API
// lists it. Dispatchers stay generic JSON values (numbers as json.Number),
// so that fields this client does not know survive an export and are
// compared when a file sets them.
type remoteState struct {
	Dispatchers []map[string]any
	Templates   []wire.Template
	Functions   []wire.Function
}

// fetchState lists every dispatcher, template and function, page by page
// (RQL limit and offset, sorted by id), reporting progress to w.
func fetchState(ctx context.Context, c *apiClient, w io.Writer) (*remoteState, error) {
	var s remoteState
	err := listAll(ctx, c, "/dispatchers/v1", w, func(raw json.RawMessage) error {
		var d map[string]any
		if err := decodeNumbers(raw, &d); err != nil {
			return err
		}
		s.Dispatchers = append(s.Dispatchers, d)
		return nil
	})
	if err != nil {
		return nil, err
	}
	err = listAll(ctx, c, "/templates/v1", w, func(raw json.RawMessage) error {
		var t wire.Template
		err := json.Unmarshal(raw, &t)
		s.Templates = append(s.Templates, t)
		return err
	})
	if err != nil {
		return nil, err
	}
	err = listAll(ctx, c, "/functions/v1", w, func(raw json.RawMessage) error {
		var f wire.Function
		err := json.Unmarshal(raw, &f)
		s.Functions = append(s.Functions, f)
		return err
	})
	return &s, err
}

// listAll pages through an RQL list in id order, each page after the last
// id read. Before, by offset: one deleted from an earlier page between two
// reads moved the next up, and it was never read (sync planned to create
// a dispatcher that exists; export left it out, and sync --clean of that
// file deleted it).
func listAll(ctx context.Context, c *apiClient, path string, w io.Writer, each func(json.RawMessage) error) error {
	limit := "limit(" + strconv.Itoa(dispatcher.MaxLimit) + ")"
	for read, after := 0, ""; ; {
		var page struct {
			Page struct {
				Total int `json:"total"` // of those after the last read
			} `json:"page"`
			Data []json.RawMessage `json:"data"`
		}
		q := "?sort(id)&" + limit
		if after != "" {
			q = "?gt(id," + after + ")&sort(id)&" + limit
		}
		if _, err := c.do(ctx, "GET", path+q, nil, nil, &page); err != nil {
			return fmt.Errorf("GET %s: %w", path, err)
		}
		for _, raw := range page.Data {
			var key struct {
				ID string `json:"id"`
			}
			err := json.Unmarshal(raw, &key)
			if err == nil && key.ID <= after {
				err = fmt.Errorf("id %q out of order", key.ID)
			}
			if err == nil {
				err = each(raw)
			}
			if err != nil {
				return fmt.Errorf("GET %s: the API answered something unexpected: %w", path, err)
			}
			after = key.ID
		}
		if total := read + page.Page.Total; total > dispatcher.MaxLimit && w != nil {
			fmt.Fprintf(w, "reading %s: %d/%d\n", path, read+len(page.Data), total)
		}
		read += len(page.Data)
		if len(page.Data) == 0 || len(page.Data) >= page.Page.Total {
			return nil
		}
	}
}

// decodeNumbers decodes JSON keeping numbers as json.Number, so that they
// compare and export as they were written.
func decodeNumbers(raw []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	return dec.Decode(v)
}

// managed reports whether sync manages the remote dispatcher d.
func managed(d map[string]any) bool {
	return slices.Contains(stringList(d["tags"]), managedTag)
}

// templateByID and the like index the remote configuration.
func (s *remoteState) templateByID(id string) *wire.Template {
	for i := range s.Templates {
		if s.Templates[i].ID == id {
			return &s.Templates[i]
		}
	}
	return nil
}

func (s *remoteState) templateByName(name string) *wire.Template {
	for i := range s.Templates {
		if s.Templates[i].Name == name {
			return &s.Templates[i]
		}
	}
	return nil
}

func (s *remoteState) functionByName(name string) *wire.Function {
	for i := range s.Functions {
		if s.Functions[i].Name == name {
			return &s.Functions[i]
		}
	}
	return nil
}

func (s *remoteState) dispatcherByName(name string) map[string]any {
	for _, d := range s.Dispatchers {
		if text(d["name"]) == name {
			return d
		}
	}
	return nil
}
