// Package client is a small client for udl's HTTP gateway (udl serve with [gateway]), on
// net/http alone.
//
// Every call carries the calling service's credential (a service token, or a client
// certificate through the http.Client's TLS configuration), the end user's JWT and the purpose
// of use. Records decode into the caller's own structs (json tags named as the OpenAPI
// document's fields); errors are *Error, carrying the problem+json body, which never holds a
// value.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// Client calls the gateway at BaseURL as one service.
type Client struct {
	BaseURL      string
	ServiceToken string
	HTTP         *http.Client
}

// New returns a client for the gateway at baseURL, calling as the service holding token.
func New(baseURL, serviceToken string) *Client {
	return &Client{BaseURL: baseURL, ServiceToken: serviceToken, HTTP: &http.Client{Timeout: 30 * time.Second}}
}

// Caller is who is asking and why: the end user's token, the purpose of use, and optionally
// the patient, a role (when the token has several) and a request id.
type Caller struct {
	Token     string
	Purpose   string
	Patient   string
	Role      string
	RequestID string
}

// Error is a refusal or failure: the HTTP status, udl's error kind and its detail.
type Error struct {
	Status     int
	Kind       string `json:"kind"`
	Detail     string `json:"detail"`
	RetryAfter time.Duration
}

func (e *Error) Error() string { return fmt.Sprintf("%d %s: %s", e.Status, e.Kind, e.Detail) }

// Page is one page of a list and the cursor of the next one ("" on the last).
type Page[T any] struct {
	Items []T     `json:"items"`
	Next  *string `json:"next"`
}

// Query selects records: a filter in udl's JSON filter language, sort keys ("-field" sorts
// descending), a page size and the cursor of a previous page.
type Query struct {
	Filter map[string]any `json:"filter,omitempty"`
	Sort   []string       `json:"sort,omitempty"`
	Limit  int            `json:"limit,omitempty"`
	Cursor *string        `json:"cursor,omitempty"`
}

// Scored is a record found by similarity and its score.
type Scored[T any] struct {
	Record T       `json:"record"`
	Score  float64 `json:"score"`
}

func (c *Client) send(ctx context.Context, method, path string, caller *Caller, body any, ifMatch *int64, out any) error {
	var reader *bytes.Reader
	if body != nil {
		encoded, err := json.Marshal(body)
		if err != nil {
			return err
		}
		reader = bytes.NewReader(encoded)
	} else {
		reader = bytes.NewReader(nil)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.BaseURL+path, reader)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.ServiceToken != "" {
		req.Header.Set("X-Udl-Service-Token", c.ServiceToken)
	}
	if caller != nil {
		req.Header.Set("Authorization", "Bearer "+caller.Token)
		req.Header.Set("X-Udl-Purpose", caller.Purpose)
		for name, value := range map[string]string{"X-Udl-Patient": caller.Patient, "X-Udl-Role": caller.Role, "X-Request-Id": caller.RequestID} {
			if value != "" {
				req.Header.Set(name, value)
			}
		}
	}
	if ifMatch != nil {
		req.Header.Set("If-Match", strconv.Quote(strconv.FormatInt(*ifMatch, 10)))
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 400 {
		problem := &Error{Status: resp.StatusCode}
		_ = json.NewDecoder(resp.Body).Decode(problem)
		if seconds, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil {
			problem.RetryAfter = time.Duration(seconds) * time.Second
		}
		return problem
	}
	if out == nil || resp.StatusCode == http.StatusNoContent {
		return nil
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// Create stores a new record of entity.
func (c *Client) Create(ctx context.Context, caller Caller, entity string, record any) error {
	return c.send(ctx, "POST", "/v1/"+entity, &caller, record, nil, nil)
}

// Get reads the record of entity with id into a T; found is false when there is none.
func Get[T any](ctx context.Context, c *Client, caller Caller, entity, id string) (record T, found bool, err error) {
	err = c.send(ctx, "GET", "/v1/"+entity+"/"+id, &caller, nil, nil, &record)
	if e, ok := err.(*Error); ok && e.Status == http.StatusNotFound {
		return record, false, nil
	}
	return record, err == nil, err
}

// Update sets the fields in changes; with expectVersion, only if the record still has it.
func (c *Client) Update(ctx context.Context, caller Caller, entity, id string, changes map[string]any, expectVersion *int64) error {
	return c.send(ctx, "PATCH", "/v1/"+entity+"/"+id, &caller, changes, expectVersion, nil)
}

// Delete removes the record of entity with id.
func (c *Client) Delete(ctx context.Context, caller Caller, entity, id string) error {
	return c.send(ctx, "DELETE", "/v1/"+entity+"/"+id, &caller, nil, nil, nil)
}

// List reads one page of records of entity matching q.
func List[T any](ctx context.Context, c *Client, caller Caller, entity string, q Query) (Page[T], error) {
	var page Page[T]
	err := c.send(ctx, "POST", "/v1/"+entity+":list", &caller, q, nil, &page)
	return page, err
}

// Count counts the records of entity matching filter.
func (c *Client) Count(ctx context.Context, caller Caller, entity string, filter map[string]any) (int64, error) {
	var answer struct {
		Count int64 `json:"count"`
	}
	err := c.send(ctx, "POST", "/v1/"+entity+":count", &caller, map[string]any{"filter": filter}, nil, &answer)
	return answer.Count, err
}

// Nearest finds the k records of entity whose vector field is most similar to vector.
func Nearest[T any](ctx context.Context, c *Client, caller Caller, entity, field string, vector []float32, k int, filter map[string]any) ([]Scored[T], error) {
	var answer struct {
		Items []Scored[T] `json:"items"`
	}
	body := map[string]any{"field": field, "vector": vector, "k": k, "filter": filter}
	err := c.send(ctx, "POST", "/v1/"+entity+":nearest", &caller, body, nil, &answer)
	return answer.Items, err
}

// Session is a live session.
type Session struct {
	ID     string         `json:"id"`
	UserID string         `json:"user_id"`
	Data   map[string]any `json:"data"`
}

// CreateSession starts a session for the caller's end user.
func (c *Client) CreateSession(ctx context.Context, caller Caller, data map[string]any) (string, error) {
	var s Session
	err := c.send(ctx, "POST", "/v1/sessions", &caller, map[string]any{"data": data}, nil, &s)
	return s.ID, err
}

// GetSession reads a live session; found is false once it has ended or expired.
func (c *Client) GetSession(ctx context.Context, caller Caller, id string) (s Session, found bool, err error) {
	err = c.send(ctx, "GET", "/v1/sessions/"+id, &caller, nil, nil, &s)
	if e, ok := err.(*Error); ok && e.Status == http.StatusNotFound {
		return s, false, nil
	}
	return s, err == nil, err
}

// EndSession ends a session.
func (c *Client) EndSession(ctx context.Context, caller Caller, id string) error {
	return c.send(ctx, "DELETE", "/v1/sessions/"+id, &caller, nil, nil, nil)
}

// RevokeToken revokes a JWT id until its expiry (seconds since the epoch).
func (c *Client) RevokeToken(ctx context.Context, caller Caller, jti string, exp int64) error {
	return c.send(ctx, "POST", "/v1/revoked-tokens", &caller, map[string]any{"jti": jti, "exp": exp}, nil, nil)
}

// CheckRate admits one request of subject under limit per period, or says when to retry.
func (c *Client) CheckRate(ctx context.Context, caller Caller, subject string, limit int, period time.Duration) (bool, time.Duration, error) {
	var answer struct {
		Allowed      bool  `json:"allowed"`
		RetryAfterMs int64 `json:"retry_after_ms"`
	}
	body := map[string]any{"subject": subject, "limit": limit, "period_ms": period.Milliseconds()}
	err := c.send(ctx, "POST", "/v1/rate-limits/check", &caller, body, nil, &answer)
	return answer.Allowed, time.Duration(answer.RetryAfterMs) * time.Millisecond, err
}

// Track appends usage events ({"at": RFC 3339, "attributes": {...}}) to stream.
func (c *Client) Track(ctx context.Context, caller Caller, stream string, events []map[string]any) error {
	return c.send(ctx, "POST", "/v1/analytics/events", &caller, map[string]any{"stream": stream, "events": events}, nil, nil)
}
