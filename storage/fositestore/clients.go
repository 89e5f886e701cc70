package fositestore

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	jose "github.com/go-jose/go-jose/v3"
	"github.com/jackc/pgx/v5"
	"github.com/ory/fosite"

	"github.com/authd/authd/storage"
)

// Client is a registered OAuth client. It implements fosite.Client and
// fosite.OpenIDConnectClient, so fosite enforces TokenEndpointAuthMethod.
type Client struct {
	ID string `json:"client_id"`
	// SecretHash is the SHA-256 of the client secret (see SHA256Hasher); nil
	// for clients without a shared secret.
	SecretHash             []byte   `json:"-"`
	Name                   string   `json:"name"`
	RedirectURIs           []string `json:"redirect_uris"`
	PostLogoutRedirectURIs []string `json:"post_logout_redirect_uris"`
	GrantTypes             []string `json:"grant_types"`
	ResponseTypes          []string `json:"response_types"`
	Scopes                 []string `json:"scopes"`
	Audience               []string `json:"audience"`
	Public                 bool     `json:"public"`
	// FirstParty clients may use the password grant and skip consent.
	FirstParty bool `json:"first_party"`
	// TokenEndpointAuthMethod is client_secret_basic, client_secret_post,
	// private_key_jwt or none; empty means none for public clients and
	// client_secret_basic otherwise.
	TokenEndpointAuthMethod string `json:"token_endpoint_auth_method"`
	// TokenEndpointAuthSigningAlg is the alg private_key_jwt assertions must
	// use; when empty, the one its keys imply (GetTokenEndpointAuthSigningAlgorithm).
	TokenEndpointAuthSigningAlg string `json:"token_endpoint_auth_signing_alg,omitempty"`
	// JWKS is the client's public JSON Web Key Set, as JSON, for
	// private_key_jwt. JSON keeps this package free of any go-jose version in
	// its API; GetJSONWebKeys converts to the go-jose v3 type fosite needs.
	JWKS                     json.RawMessage `json:"jwks,omitempty"`
	JWKSURI                  string          `json:"jwks_uri,omitempty"`
	IDTokenSignedResponseAlg string          `json:"id_token_signed_response_alg,omitempty"`
	// ChargeMaxPerSpend and ChargeMaxPerUserDay cap what the client may
	// charge users' credits (one charge; one user per UTC day); 0 = no cap.
	ChargeMaxPerSpend   int64 `json:"charge_max_per_spend,omitempty"`
	ChargeMaxPerUserDay int64 `json:"charge_max_per_user_day,omitempty"`
	// RequirePushedAuthorizationRequests refuses authorization requests
	// that did not come through /oauth2/par (RFC 9126 §6).
	RequirePushedAuthorizationRequests bool `json:"require_pushed_authorization_requests"`
	// RequireMFA makes the client's users pass a second factor before it
	// gets a code.
	RequireMFA bool `json:"require_mfa"`
	// BackchannelLogoutURI receives logout tokens (OIDC Back-Channel Logout
	// 1.0) when a session or user the client served is logged out; "" for none.
	BackchannelLogoutURI string `json:"backchannel_logout_uri,omitempty"`
	// BackchannelLogoutSessionRequired: the client needs "sid" in every
	// logout token, so it is never sent a token naming only the user.
	BackchannelLogoutSessionRequired bool      `json:"backchannel_logout_session_required"`
	CreatedAt                        time.Time `json:"created_at"`
	UpdatedAt                        time.Time `json:"updated_at"`

	jwks *jose.JSONWebKeySet // parsed JWKS, set when loaded from the store
}

var (
	_ fosite.OpenIDConnectClient = (*Client)(nil)
	_ fosite.ResponseModeClient  = (*Client)(nil)
)

// GetID implements fosite.Client.
func (c *Client) GetID() string { return c.ID }

// GetHashedSecret implements fosite.Client: the SHA-256 of the secret.
func (c *Client) GetHashedSecret() []byte { return c.SecretHash }

// GetRedirectURIs implements fosite.Client.
func (c *Client) GetRedirectURIs() []string { return c.RedirectURIs }

// GetGrantTypes implements fosite.Client; empty means authorization_code
// (OIDC Dynamic Registration's default, as fosite's DefaultClient does).
func (c *Client) GetGrantTypes() fosite.Arguments {
	if len(c.GrantTypes) == 0 {
		return fosite.Arguments{"authorization_code"}
	}
	return fosite.Arguments(c.GrantTypes)
}

// GetResponseTypes implements fosite.Client; empty means code.
func (c *Client) GetResponseTypes() fosite.Arguments {
	if len(c.ResponseTypes) == 0 {
		return fosite.Arguments{"code"}
	}
	return fosite.Arguments(c.ResponseTypes)
}

// GetScopes implements fosite.Client.
func (c *Client) GetScopes() fosite.Arguments { return fosite.Arguments(c.Scopes) }

// IsPublic implements fosite.Client.
func (c *Client) IsPublic() bool { return c.Public }

// GetAudience implements fosite.Client.
func (c *Client) GetAudience() fosite.Arguments { return fosite.Arguments(c.Audience) }

// GetRequestURIs implements fosite.OpenIDConnectClient; authd registers none.
func (c *Client) GetRequestURIs() []string { return nil }

// GetJSONWebKeys implements fosite.OpenIDConnectClient. It returns nil when
// the client has no (valid) key set.
func (c *Client) GetJSONWebKeys() *jose.JSONWebKeySet {
	if c.jwks != nil {
		return c.jwks
	}
	set, _ := parseJWKS(c.JWKS)
	return set
}

// GetJSONWebKeysURI implements fosite.OpenIDConnectClient.
func (c *Client) GetJSONWebKeysURI() string { return c.JWKSURI }

// GetRequestObjectSigningAlgorithm implements fosite.OpenIDConnectClient.
func (c *Client) GetRequestObjectSigningAlgorithm() string { return "" }

// GetTokenEndpointAuthMethod implements fosite.OpenIDConnectClient.
func (c *Client) GetTokenEndpointAuthMethod() string {
	switch {
	case c.TokenEndpointAuthMethod != "":
		return c.TokenEndpointAuthMethod
	case c.Public:
		return "none"
	default:
		return "client_secret_basic"
	}
}

// GetTokenEndpointAuthSigningAlgorithm implements fosite.OpenIDConnectClient:
// the alg fosite requires of private_key_jwt assertions. Registration stores
// it; for a client stored without one it follows the registered keys
// (ES256 when every key is P-256, else RS256, fosite's default), since an
// EC key can never verify an RS256 assertion.
func (c *Client) GetTokenEndpointAuthSigningAlgorithm() string {
	if c.TokenEndpointAuthSigningAlg != "" {
		return c.TokenEndpointAuthSigningAlg
	}
	if set := c.GetJSONWebKeys(); set != nil && len(set.Keys) > 0 {
		for _, k := range set.Keys {
			if ec, ok := k.Key.(*ecdsa.PublicKey); !ok || ec.Curve != elliptic.P256() {
				return "RS256"
			}
		}
		return "ES256"
	}
	return "RS256"
}

// GetResponseModes implements fosite.ResponseModeClient: the modes every
// client may ask for, the two that carry iss (RFC 9207). Without it fosite
// refuses even an explicit response_mode=query.
func (c *Client) GetResponseModes() []fosite.ResponseModeType {
	return []fosite.ResponseModeType{fosite.ResponseModeQuery, fosite.ResponseModeFormPost}
}

// parseJWKS converts registered JSON into fosite's go-jose v3 key set.
func parseJWKS(raw json.RawMessage) (*jose.JSONWebKeySet, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(raw, &set); err != nil {
		return nil, fmt.Errorf("fositestore: client jwks: %w", err)
	}
	return &set, nil
}

// SHA256Hasher is the fosite.Hasher for client secrets. Secrets are
// server-generated with ≥256 bits of entropy, so a slow password hash adds
// nothing and would cap client_credentials throughput; Compare is
// constant-time.
type SHA256Hasher struct{}

// ErrSecretMismatch is returned by SHA256Hasher.Compare.
var ErrSecretMismatch = errors.New("fositestore: client secret does not match")

// Hash returns the SHA-256 of data.
func (SHA256Hasher) Hash(_ context.Context, data []byte) ([]byte, error) {
	sum := sha256.Sum256(data)
	return sum[:], nil
}

// Compare returns nil when hash is the SHA-256 of data, ErrSecretMismatch
// otherwise.
func (SHA256Hasher) Compare(_ context.Context, hash, data []byte) error {
	sum := sha256.Sum256(data)
	if subtle.ConstantTimeCompare(hash, sum[:]) != 1 {
		return ErrSecretMismatch
	}
	return nil
}

const clientColumns = `c.id, c.secret_hash, c.name, c.redirect_uris, c.post_logout_redirect_uris,
	c.grant_types, c.response_types, c.scopes, c.audience, c.public, c.first_party,
	c.token_endpoint_auth_method, c.token_endpoint_auth_signing_alg, c.jwks, c.jwks_uri,
	c.id_token_signed_response_alg, c.charge_max_per_spend, c.charge_max_per_user_day, c.created_at, c.updated_at,
	c.require_pushed_authorization_requests, c.require_mfa, c.backchannel_logout_uri, c.backchannel_logout_session_required`

// clientDest returns scan targets for clientColumns; finish with c.loaded().
func clientDest(c *Client) []any {
	return []any{&c.ID, &c.SecretHash, &c.Name, &c.RedirectURIs, &c.PostLogoutRedirectURIs,
		&c.GrantTypes, &c.ResponseTypes, &c.Scopes, &c.Audience, &c.Public, &c.FirstParty,
		&c.TokenEndpointAuthMethod, &c.TokenEndpointAuthSigningAlg, &c.JWKS, &c.JWKSURI,
		&c.IDTokenSignedResponseAlg, &c.ChargeMaxPerSpend, &c.ChargeMaxPerUserDay, &c.CreatedAt, &c.UpdatedAt,
		&c.RequirePushedAuthorizationRequests, &c.RequireMFA, &c.BackchannelLogoutURI, &c.BackchannelLogoutSessionRequired}
}

// loaded parses the stored JWKS once per load; it was validated on write.
func (c *Client) loaded() *Client {
	c.jwks, _ = parseJWKS(c.JWKS)
	return c
}

// clientArgs returns the writable columns' values, validating the key set.
func clientArgs(c *Client) ([]any, error) {
	if c.ID == "" {
		return nil, errors.New("fositestore: client id is empty")
	}
	var jwks any // NULL unless a key set is given
	if len(c.JWKS) > 0 && string(c.JWKS) != "null" {
		if _, err := parseJWKS(c.JWKS); err != nil {
			return nil, err
		}
		jwks = string(c.JWKS)
	}
	var secret any
	if len(c.SecretHash) > 0 {
		secret = c.SecretHash
	}
	return []any{c.ID, secret, c.Name, strs(c.RedirectURIs), strs(c.PostLogoutRedirectURIs),
		strs(c.GrantTypes), strs(c.ResponseTypes), strs(c.Scopes), strs(c.Audience), c.Public, c.FirstParty,
		c.GetTokenEndpointAuthMethod(), c.TokenEndpointAuthSigningAlg, jwks, c.JWKSURI,
		c.IDTokenSignedResponseAlg, c.ChargeMaxPerSpend, c.ChargeMaxPerUserDay,
		c.RequirePushedAuthorizationRequests, c.RequireMFA, c.BackchannelLogoutURI, c.BackchannelLogoutSessionRequired}, nil
}

// CreateClient registers c and sets its CreatedAt/UpdatedAt. It returns
// ErrClientExists when the id is taken. An empty TokenEndpointAuthMethod is
// stored as its effective value.
func (s *Store) CreateClient(ctx context.Context, c *Client) error {
	args, err := clientArgs(c)
	if err != nil {
		return err
	}
	err = s.q(ctx).QueryRow(ctx, `INSERT INTO oauth2_clients (id, secret_hash, name, redirect_uris,
		post_logout_redirect_uris, grant_types, response_types, scopes, audience, public, first_party,
		token_endpoint_auth_method, token_endpoint_auth_signing_alg, jwks, jwks_uri, id_token_signed_response_alg,
		charge_max_per_spend, charge_max_per_user_day,
		require_pushed_authorization_requests, require_mfa, backchannel_logout_uri, backchannel_logout_session_required)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18,
		$19, $20, $21, $22)
		RETURNING created_at, updated_at`, args...).Scan(&c.CreatedAt, &c.UpdatedAt)
	if storage.IsUniqueViolation(err, "oauth2_clients_pkey") {
		return ErrClientExists
	}
	if err != nil {
		return mapErr("create client", err)
	}
	c.TokenEndpointAuthMethod = c.GetTokenEndpointAuthMethod()
	return nil
}

// UpdateClient replaces every field of the client with id c.ID except
// CreatedAt, and sets UpdatedAt. It returns ErrNotFound when there is none.
// A nil SecretHash clears the secret: load, modify, update.
func (s *Store) UpdateClient(ctx context.Context, c *Client) error {
	args, err := clientArgs(c)
	if err != nil {
		return err
	}
	err = s.q(ctx).QueryRow(ctx, `UPDATE oauth2_clients SET secret_hash = $2, name = $3, redirect_uris = $4,
		post_logout_redirect_uris = $5, grant_types = $6, response_types = $7, scopes = $8, audience = $9,
		public = $10, first_party = $11, token_endpoint_auth_method = $12, token_endpoint_auth_signing_alg = $13,
		jwks = $14, jwks_uri = $15, id_token_signed_response_alg = $16,
		charge_max_per_spend = $17, charge_max_per_user_day = $18,
		require_pushed_authorization_requests = $19, require_mfa = $20, backchannel_logout_uri = $21,
		backchannel_logout_session_required = $22, updated_at = now()
		WHERE id = $1 RETURNING created_at, updated_at`, args...).Scan(&c.CreatedAt, &c.UpdatedAt)
	s.clientChanged(ctx, c.ID)
	if err != nil {
		return mapErr("update client", err)
	}
	c.TokenEndpointAuthMethod = c.GetTokenEndpointAuthMethod()
	return nil
}

// DeleteClient removes a client; every code and token issued to it goes
// with it (ON DELETE CASCADE). It returns ErrNotFound when there is none.
func (s *Store) DeleteClient(ctx context.Context, id string) error {
	tag, err := s.q(ctx).Exec(ctx, `DELETE FROM oauth2_clients WHERE id = $1`, id)
	s.clientChanged(ctx, id)
	if err != nil {
		return mapErr("delete client", err)
	}
	if tag.RowsAffected() == 0 {
		return ErrNotFound
	}
	return nil
}

// Client returns the client with id, or ErrNotFound.
func (s *Store) Client(ctx context.Context, id string) (*Client, error) {
	var c Client
	err := s.q(ctx).QueryRow(ctx, `SELECT `+clientColumns+` FROM oauth2_clients c WHERE c.id = $1`, id).
		Scan(clientDest(&c)...)
	if err != nil {
		return nil, mapErr("get client", err)
	}
	return c.loaded(), nil
}

// ListClients returns every client, oldest first.
func (s *Store) ListClients(ctx context.Context) ([]*Client, error) {
	rows, err := s.q(ctx).Query(ctx, `SELECT `+clientColumns+` FROM oauth2_clients c ORDER BY c.created_at, c.id`)
	if err != nil {
		return nil, mapErr("list clients", err)
	}
	out := []*Client{}
	for rows.Next() {
		var c Client
		if err := rows.Scan(clientDest(&c)...); err != nil {
			rows.Close()
			return nil, mapErr("list clients", err)
		}
		out = append(out, c.loaded())
	}
	return out, mapErr("list clients", rows.Err())
}

// GetClient implements fosite.ClientManager; the value is a *Client, shared
// with other callers while WatchClients runs (clientcache.go): read it, never
// modify it (Client returns a private copy to load, modify and update).
func (s *Store) GetClient(ctx context.Context, id string) (fosite.Client, error) {
	c, err := s.cachedClient(ctx, id)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// ClientAssertionJWTValid implements fosite.ClientManager: nil when jti is
// unknown or expired, fosite.ErrJTIKnown otherwise.
func (s *Store) ClientAssertionJWTValid(ctx context.Context, jti string) error {
	var exp time.Time
	err := s.q(ctx).QueryRow(ctx, `SELECT expires_at FROM oauth2_jti WHERE jti = $1`, hashKey(jti)).Scan(&exp)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil
	}
	if err != nil {
		return mapErr("check jti", err)
	}
	if exp.After(s.clock()) {
		return fosite.ErrJTIKnown
	}
	return nil
}

// SetClientAssertionJWT implements fosite.ClientManager: it records jti until
// exp, replacing an expired record, and returns fosite.ErrJTIKnown when a live
// one exists (two concurrent uses of one assertion: one wins). Expired JTIs
// are removed by DeleteExpired rather than on this hot path.
func (s *Store) SetClientAssertionJWT(ctx context.Context, jti string, exp time.Time) error {
	tag, err := s.q(ctx).Exec(ctx, `INSERT INTO oauth2_jti (jti, expires_at) VALUES ($1, $2)
		ON CONFLICT (jti) DO UPDATE SET expires_at = EXCLUDED.expires_at WHERE oauth2_jti.expires_at <= $3`,
		hashKey(jti), exp.UTC(), s.clock())
	if err != nil {
		return mapErr("set jti", err)
	}
	if tag.RowsAffected() == 0 {
		return fosite.ErrJTIKnown
	}
	return nil
}
