package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// apiClient speaks the dispatcher's HTTP API as any client does: the
// documented JSON with a bearer token. Its shapes are declared here, not
// borrowed from package wire, so the harness checks the API from the
// outside.
type apiClient struct {
	base  string
	token string
	http  *http.Client
}

func newAPIClient(base, token string) *apiClient {
	return &apiClient{base: base, token: token, http: &http.Client{
		Timeout:   15 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: 64},
	}}
}

// httpError is an answer other than the expected one.
type httpError struct {
	Method, Path string
	Status       int
	Body         string
}

func (e *httpError) Error() string {
	return fmt.Sprintf("%s %s = %d: %s", e.Method, e.Path, e.Status, e.Body)
}

// call sends body as JSON and decodes a 2xx answer into out; another
// status is an *httpError.
func (a *apiClient) call(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+a.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := a.http.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(res.Body, 4<<20))
	if res.StatusCode < 200 || res.StatusCode > 299 {
		return &httpError{Method: method, Path: path, Status: res.StatusCode, Body: string(bytes.TrimSpace(raw))}
	}
	if out != nil {
		return json.Unmarshal(raw, out)
	}
	return nil
}

// configure creates the chaos dispatcher: event type "chaos", a slow and
// a quick task function on the HTTP sink, a mail to a fixed address.
func (a *apiClient) configure(ctx context.Context, functionsURL string) error {
	var tmpl struct {
		ID string `json:"id"`
	}
	if err := a.call(ctx, http.MethodPost, "/templates/v1", map[string]any{
		"name": "chaos-mail", "subject": "Chaos event {{ .event.content.seq }}",
		"text": "Event number {{ .content.seq }} happened.",
	}, &tmpl); err != nil {
		return err
	}
	for _, f := range []map[string]any{
		{"name": "chaos-slow", "url": functionsURL + "/" + actionSlow, "timeoutSeconds": 30},
		{"name": "chaos-quick", "url": functionsURL + "/" + actionQuick},
	} {
		if err := a.call(ctx, http.MethodPost, "/functions/v1", f, nil); err != nil {
			return err
		}
	}
	return a.call(ctx, http.MethodPost, "/dispatchers/v1", map[string]any{
		"name": "chaos", "eventType": "chaos", "actions": []any{
			map[string]any{"type": "task", "name": actionSlow, "functionName": "chaos-slow",
				"data": map[string]any{"seq": "{{ .event.content.seq }}"}},
			map[string]any{"type": "task", "name": actionQuick, "functionName": "chaos-quick",
				"data": map[string]any{"seq": "{{ .event.content.seq }}"}},
			map[string]any{"type": "mail", "name": actionMail, "templateId": tmpl.ID,
				"recipients": map[string]any{"to": []string{"chaos@example.com"}}},
		},
	}, nil)
}

// accepted is the 202 answer of POST /events/v1.
type accepted struct {
	WorkflowID string `json:"workflowId"`
	Duplicate  bool   `json:"duplicate"`
}

// sendEvent posts event seq of type "chaos" once.
func (a *apiClient) sendEvent(ctx context.Context, id string, seq int) (accepted, error) {
	var acc accepted
	err := a.call(ctx, http.MethodPost, "/events/v1", map[string]any{
		"id": id, "type": "chaos", "content": map[string]any{"seq": seq},
	}, &acc)
	return acc, err
}

// execution is one run of a dispatch, as GET /executions/v1 lists it.
type execution struct {
	WorkflowID      string   `json:"workflowId"`
	RunID           string   `json:"runId"`
	EventID         string   `json:"eventId"`
	Status          string   `json:"status"`
	StartTimestamp  int64    `json:"startTimestamp"`
	FailedActionIDs []string `json:"failedActionIds"`
	ErrorClasses    []string `json:"errorClasses"`
}

// executionDetail is GET /executions/v1/{workflowId}: per action, what
// the dispatcher recorded.
type executionDetail struct {
	execution
	Actions []struct {
		ActionName string `json:"actionName"`
		Status     string `json:"status"`
		Attempts   int    `json:"attempts"`
		HTTPStatus int    `json:"httpStatus"`
		LastError  *struct {
			Message string `json:"message"`
			Class   string `json:"class"`
		} `json:"lastError"`
	} `json:"actions"`
}

// executions lists every run of the chaos dispatches that match status
// ("" for all), following the pages; max > 0 stops after that many.
func (a *apiClient) executions(ctx context.Context, status string, max int) ([]execution, error) {
	var out []execution
	token := ""
	for {
		q := url.Values{"eventType": {"chaos"}, "limit": {"100"}}
		if max > 0 {
			q.Set("limit", strconv.Itoa(min(max, 100)))
		}
		if status != "" {
			q.Set("status", status)
		}
		if token != "" {
			q.Set("pageToken", token)
		}
		var page struct {
			Data []execution `json:"data"`
			Page struct {
				NextPageToken string `json:"nextPageToken"`
			} `json:"page"`
		}
		if err := a.call(ctx, http.MethodGet, "/executions/v1?"+q.Encode(), nil, &page); err != nil {
			return nil, err
		}
		out = append(out, page.Data...)
		token = page.Page.NextPageToken
		if token == "" || (max > 0 && len(out) >= max) {
			return out, nil
		}
	}
}

// execution reads one dispatch's detail.
func (a *apiClient) execution(ctx context.Context, workflowID string) (executionDetail, error) {
	var d executionDetail
	err := a.call(ctx, http.MethodGet, "/executions/v1/"+url.PathEscape(workflowID), nil, &d)
	return d, err
}
