package resource

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// ErrInsufficientCredits: the user's balance is lower than the amount (409
// insufficient_credits). Nothing was debited.
var ErrInsufficientCredits = errors.New("resource: insufficient credits")

// ErrReferenceConflict: the reference was already used for a different
// amount or description (409 reference_conflict). Nothing was debited.
var ErrReferenceConflict = errors.New("resource: reference already used for a different request")

// APIError is a refusal from the credit API, an RFC 9457 problem document.
// errors.Is matches it against ErrInsufficientCredits and
// ErrReferenceConflict by its type.
type APIError struct {
	Status int
	Type   string // e.g. urn:authd:problem:insufficient_credits
	Title  string
	Detail string
	// Balance is set for insufficient_credits.
	Balance *int64
}

func (e *APIError) Error() string {
	return fmt.Sprintf("resource: credits API: %d %s: %s", e.Status, e.Title, e.Detail)
}

// Code is the type's last segment (insufficient_credits, not_found, …).
func (e *APIError) Code() string {
	if i := strings.LastIndexAny(e.Type, ":/"); i >= 0 {
		return e.Type[i+1:]
	}
	return e.Type
}

// Is maps the wire codes to the sentinels.
func (e *APIError) Is(target error) bool {
	switch target {
	case ErrInsufficientCredits:
		return e.Code() == "insufficient_credits"
	case ErrReferenceConflict:
		return e.Code() == "reference_conflict"
	}
	return false
}

// do sends one credit API call with retries. Retrying a POST is safe only
// because the ledger makes the reference idempotent: a retry of a debit
// that did land returns the same transaction (Replayed).
func (c *Credits) do(ctx context.Context, who Caller, method, suffix string, body, dst any) error {
	var payload []byte
	if body != nil {
		var err error
		if payload, err = json.Marshal(body); err != nil {
			return err
		}
	}
	wait := c.cfg.Backoff
	refreshed := false
	var last error
	for attempt := 1; ; attempt++ {
		retryAfter, err := c.once(ctx, who, method, c.path(who)+suffix, payload, dst)
		var auth *errServiceAuth
		switch {
		case err == nil:
			return nil
		case errors.As(err, &auth) && !refreshed:
			// The cached service token was refused (expired, revoked):
			// fetch a new one once, at no cost to the attempt budget.
			c.tokens.drop(auth.token)
			refreshed = true
			attempt--
			continue
		case !retryable(err):
			return err
		}
		last = err
		if attempt >= c.cfg.MaxAttempts {
			return fmt.Errorf("%w: credits API: %d attempts: %v", ErrUnavailable, attempt, last)
		}
		d := wait
		if retryAfter > 0 {
			d = retryAfter
		}
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%w (last error: %v)", ctx.Err(), last)
		case <-t.C:
		}
		wait = min(2*wait, 2*time.Second)
	}
}

// errTransient marks a failure worth another attempt.
type errTransient struct{ err error }

func (e *errTransient) Error() string { return e.err.Error() }
func (e *errTransient) Unwrap() error { return e.err }

// errServiceAuth: the service's token was refused with 401.
type errServiceAuth struct {
	token string
	err   error
}

func (e *errServiceAuth) Error() string { return e.err.Error() }
func (e *errServiceAuth) Unwrap() error { return e.err }

func retryable(err error) bool {
	var t *errTransient
	return errors.As(err, &t)
}

// once makes one request. It returns the Retry-After delay, if any.
func (c *Credits) once(ctx context.Context, who Caller, method, u string, payload []byte, dst any) (time.Duration, error) {
	tok := who.token
	if who.userID != "" {
		var err error
		if tok, err = c.tokens.get(ctx); err != nil {
			return 0, err
		}
	}
	var rd io.Reader
	if payload != nil {
		rd = bytes.NewReader(payload)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Accept", "application/json")
	if payload != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.cfg.HTTPClient.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		return 0, &errTransient{err}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxDocument))
	if err != nil {
		return 0, &errTransient{err}
	}
	switch {
	case resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusCreated:
		if err := json.Unmarshal(data, dst); err != nil {
			return 0, fmt.Errorf("resource: credits API: decode answer: %w", err)
		}
		return 0, nil
	case resp.StatusCode == http.StatusUnauthorized && who.userID != "":
		return 0, &errServiceAuth{token: tok, err: decodeProblem(resp.StatusCode, data)}
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		return retryAfter(resp.Header.Get("Retry-After")), &errTransient{decodeProblem(resp.StatusCode, data)}
	default:
		return 0, decodeProblem(resp.StatusCode, data)
	}
}

func retryAfter(h string) time.Duration {
	if n, err := strconv.Atoi(h); err == nil && n >= 0 {
		return min(time.Duration(n)*time.Second, 10*time.Second)
	}
	return 0
}

func decodeProblem(status int, data []byte) *APIError {
	var p struct {
		Type    string `json:"type"`
		Title   string `json:"title"`
		Detail  string `json:"detail"`
		Balance *int64 `json:"balance"`
	}
	_ = json.Unmarshal(data, &p)
	if p.Title == "" {
		p.Title = http.StatusText(status)
	}
	return &APIError{Status: status, Type: p.Type, Title: p.Title, Detail: p.Detail, Balance: p.Balance}
}

// clientCredentials fetches a token with the client_credentials grant from
// the token endpoint named by discovery.
func clientCredentials(ctx context.Context, cfg *CreditsConfig, scope string) (string, time.Duration, error) {
	kc := &keyCache{cfg: Config{Issuer: cfg.Issuer, HTTPClient: cfg.HTTPClient}}
	var d discovery
	if err := kc.getJSON(ctx, cfg.Issuer+"/.well-known/openid-configuration", &d); err != nil {
		return "", 0, &errTransient{fmt.Errorf("discovery: %w", err)}
	}
	form := url.Values{"grant_type": {"client_credentials"}, "scope": {scope}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.TokenEndpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return "", 0, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(cfg.ClientID), url.QueryEscape(cfg.ClientSecret))
	resp, err := cfg.HTTPClient.Do(req)
	if err != nil {
		return "", 0, &errTransient{err}
	}
	defer resp.Body.Close()
	var out struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int64  `json:"expires_in"`
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	_ = json.NewDecoder(io.LimitReader(resp.Body, maxDocument)).Decode(&out)
	switch {
	case resp.StatusCode >= 500:
		return "", 0, &errTransient{fmt.Errorf("token endpoint: status %d", resp.StatusCode)}
	case resp.StatusCode != http.StatusOK || out.AccessToken == "":
		return "", 0, fmt.Errorf("resource: client_credentials for %s: %d %s %s", cfg.ClientID, resp.StatusCode, out.Error, out.Description)
	}
	if out.ExpiresIn <= 0 {
		out.ExpiresIn = 60
	}
	return out.AccessToken, time.Duration(out.ExpiresIn) * time.Second, nil
}
