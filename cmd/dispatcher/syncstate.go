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

// listAll pages through an RQL list, as an Extra Horizon client does: while
// total > offset + limit.
func listAll(ctx context.Context, c *apiClient, path string, w io.Writer, each func(json.RawMessage) error) error {
	for offset := 0; ; {
		var page struct {
			Page struct {
				Total int `json:"total"`
			} `json:"page"`
			Data []json.RawMessage `json:"data"`
		}
		q := "?sort(id)&limit(" + strconv.Itoa(dispatcher.MaxLimit) + "," + strconv.Itoa(offset) + ")"
		if _, err := c.do(ctx, "GET", path+q, nil, nil, &page); err != nil {
			return fmt.Errorf("GET %s: %w", path, err)
		}
		for _, raw := range page.Data {
			if err := each(raw); err != nil {
				return fmt.Errorf("GET %s: the API answered something unexpected: %w", path, err)
			}
		}
		offset += len(page.Data)
		if page.Page.Total > dispatcher.MaxLimit && w != nil {
			fmt.Fprintf(w, "reading %s: %d/%d\n", path, offset, page.Page.Total)
		}
		if len(page.Data) == 0 || offset >= page.Page.Total {
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
