package resource

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Credits is a client of authd's credit API. Create it with NewCredits; it
// is safe for concurrent use.
type Credits struct {
	cfg    CreditsConfig
	tokens *serviceTokens
}

// CreditsConfig configures a Credits client. Issuer is required; the
// client credentials only for ForUser calls.
type CreditsConfig struct {
	// Issuer is authd's base URL (AUTHD_ISSUER).
	Issuer string
	// ClientID and ClientSecret are the service's confidential client,
	// registered with grant client_credentials and scope credits:charge.
	ClientID     string
	ClientSecret string
	// MaxAttempts bounds tries per call, the first included (default 4).
	MaxAttempts int
	// Backoff is the wait before the first retry, doubled each time up to
	// 2s (default 100ms). A Retry-After answer overrides it.
	Backoff    time.Duration
	HTTPClient *http.Client // default: a client with a 10s timeout
}

// Caller says whose credits a call acts on, and with which token.
type Caller struct {
	token  string
	userID string
}

// AsUser acts on the token's own user with the user's access token (scope
// credits:spend to spend, credits:read for the balance).
func AsUser(accessToken string) Caller { return Caller{token: accessToken} }

// ForUser acts on userID's credits with the service's own client
// credentials (scope credits:charge), e.g. Claims.Subject of the request.
func ForUser(userID string) Caller { return Caller{userID: userID} }

// Transaction is a posted ledger transaction as authd returns it.
type Transaction struct {
	ID           string    `json:"id"`
	UserID       string    `json:"user_id"`
	Kind         string    `json:"kind"`
	Amount       int64     `json:"amount"`
	Reference    string    `json:"reference"`
	Description  string    `json:"description"`
	BalanceAfter int64     `json:"balance_after"`
	CreatedAt    time.Time `json:"created_at"`
	// Replayed is true when authd returned the transaction of an earlier
	// request with the same reference (a retry) instead of posting again.
	Replayed bool `json:"replayed"`
}

// NewCredits returns a client for cfg.
func NewCredits(cfg CreditsConfig) (*Credits, error) {
	u, err := url.Parse(cfg.Issuer)
	if cfg.Issuer == "" || err != nil || u.Host == "" {
		return nil, fmt.Errorf("resource: invalid credits configuration: Issuer %q is not an absolute URL", cfg.Issuer)
	}
	cfg.Issuer = strings.TrimRight(cfg.Issuer, "/")
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 4
	}
	if cfg.Backoff <= 0 {
		cfg.Backoff = 100 * time.Millisecond
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: defaultHTTPTimeout}
	}
	return &Credits{cfg: cfg, tokens: &serviceTokens{cfg: &cfg}}, nil
}

// Spend debits amount credits. reference identifies the operation (an
// order id, a request's idempotency key): the same reference with the same
// amount and description is one debit however often it is sent, which is
// what makes the automatic retries safe. Errors: ErrInsufficientCredits,
// ErrReferenceConflict, *APIError for other refusals, ErrUnavailable when
// authd could not be reached after every attempt.
func (c *Credits) Spend(ctx context.Context, who Caller, amount int64, reference, description string) (*Transaction, error) {
	if amount <= 0 {
		return nil, fmt.Errorf("resource: spend amount must be positive, got %d", amount)
	}
	if strings.TrimSpace(reference) == "" {
		return nil, errors.New("resource: spend needs a reference (it makes retries safe)")
	}
	body := map[string]any{"amount": amount, "reference": reference, "description": description}
	var tx Transaction
	if err := c.do(ctx, who, http.MethodPost, "/spend", body, &tx); err != nil {
		return nil, err
	}
	return &tx, nil
}

// Balance returns the user's balance. Errors as for Spend.
func (c *Credits) Balance(ctx context.Context, who Caller) (int64, error) {
	var out struct {
		Balance int64 `json:"balance"`
	}
	if err := c.do(ctx, who, http.MethodGet, "", nil, &out); err != nil {
		return 0, err
	}
	return out.Balance, nil
}

// path is the credit endpoint for who: the user's own, or a service's.
func (c *Credits) path(who Caller) string {
	if who.userID != "" {
		return c.cfg.Issuer + "/api/v1/users/" + url.PathEscape(who.userID) + "/credits"
	}
	return c.cfg.Issuer + "/api/v1/credits"
}

// serviceTokens caches the service's client_credentials access token.
type serviceTokens struct {
	cfg *CreditsConfig

	mu      sync.Mutex
	token   string
	expires time.Time
}

// get returns a cached token or fetches a new one; drop forgets tok (a 401).
func (s *serviceTokens) get(ctx context.Context) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.token != "" && time.Now().Before(s.expires) {
		return s.token, nil
	}
	if s.cfg.ClientID == "" || s.cfg.ClientSecret == "" {
		return "", errors.New("resource: ForUser needs CreditsConfig.ClientID and ClientSecret")
	}
	tok, ttl, err := clientCredentials(ctx, s.cfg, "credits:charge")
	if err != nil {
		return "", err
	}
	// Renew a little early so a token never expires in flight.
	s.token, s.expires = tok, time.Now().Add(ttl-ttl/10)
	return tok, nil
}

func (s *serviceTokens) drop(tok string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.token == tok {
		s.token = ""
	}
}
