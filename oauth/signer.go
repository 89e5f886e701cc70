package oauth

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"errors"
	"fmt"
	"net/http"
	"slices"

	"github.com/ory/fosite/token/jwt"
)

// KeySource is what the provider needs from the signing-key manager
// (oauth/keys.Manager implements it).
type KeySource interface {
	// Signer returns the active key for alg and its kid.
	Signer(alg string) (kid string, key crypto.Signer, err error)
	// PublicKey returns a published key by kid.
	PublicKey(kid string) (pub crypto.PublicKey, alg string, ok bool)
	// ServeJWKS answers GET /.well-known/jwks.json.
	ServeJWKS(w http.ResponseWriter, r *http.Request)
}

// errUnknownKey marks a token whose kid is not among the published keys.
var errUnknownKey = errors.New("oauth: token signed by an unknown key")

// rotatingSigner is fosite's jwt.Signer over the key manager: Generate signs
// with the key active now and writes its kid; Decode picks the public key by
// kid among every published key, with the algorithm pinned to algs.
type rotatingSigner struct {
	keys KeySource
	// alg is the default signing algorithm.
	alg string
	// algs are accepted when verifying, and when a session header asks for
	// one (an ID token for a client registered with another alg).
	algs []string
}

var _ jwt.Signer = (*rotatingSigner)(nil)

// headerAlg is a private header key a session may set to choose the alg of
// its ID token; the signer removes it before signing.
const headerAlg = "authd_alg"

func (s *rotatingSigner) Generate(ctx context.Context, claims jwt.MapClaims, header jwt.Mapper) (string, string, error) {
	alg := s.alg
	hdr := &jwt.Headers{Extra: map[string]interface{}{}}
	if header != nil {
		for k, v := range header.ToMap() {
			hdr.Extra[k] = v
		}
	}
	if a, ok := hdr.Extra[headerAlg].(string); ok && a != "" {
		if !slices.Contains(s.algs, a) {
			return "", "", fmt.Errorf("oauth: signing alg %q not allowed", a)
		}
		alg = a
	}
	delete(hdr.Extra, headerAlg)
	kid, key, err := s.keys.Signer(alg)
	if err != nil {
		return "", "", fmt.Errorf("oauth: signing key for %s: %w", alg, err)
	}
	hdr.Extra["kid"] = kid // overwrite: never trust a kid carried by a session
	var priv interface{}
	switch k := key.(type) {
	case *ecdsa.PrivateKey:
		if alg != "ES256" {
			return "", "", fmt.Errorf("oauth: key %s is ECDSA but alg is %s", kid, alg)
		}
		priv = k
	case *rsa.PrivateKey:
		if alg != "RS256" {
			return "", "", fmt.Errorf("oauth: key %s is RSA but alg is %s", kid, alg)
		}
		priv = k
	default:
		return "", "", fmt.Errorf("oauth: unsupported key type %T", key)
	}
	ds := &jwt.DefaultSigner{GetPrivateKey: func(context.Context) (interface{}, error) { return priv, nil }}
	return ds.Generate(ctx, claims, hdr)
}

func (s *rotatingSigner) keyfunc(t *jwt.Token) (interface{}, error) {
	alg := string(t.Method)
	if !slices.Contains(s.algs, alg) {
		return nil, fmt.Errorf("oauth: token alg %q not accepted", alg)
	}
	kid, _ := t.Header["kid"].(string)
	pub, keyAlg, ok := s.keys.PublicKey(kid)
	if !ok {
		return nil, errUnknownKey
	}
	if keyAlg != alg {
		return nil, fmt.Errorf("oauth: token alg %q does not match key %s (%s)", alg, kid, keyAlg)
	}
	return pub, nil
}

func (s *rotatingSigner) Decode(ctx context.Context, token string) (*jwt.Token, error) {
	return jwt.ParseWithClaims(token, jwt.MapClaims{}, s.keyfunc)
}

func (s *rotatingSigner) Validate(ctx context.Context, token string) (string, error) {
	if _, err := s.Decode(ctx, token); err != nil {
		return "", err
	}
	return s.GetSignature(ctx, token)
}

func (s *rotatingSigner) GetSignature(ctx context.Context, token string) (string, error) {
	return (&jwt.DefaultSigner{}).GetSignature(ctx, token)
}

func (s *rotatingSigner) Hash(ctx context.Context, in []byte) ([]byte, error) {
	return (&jwt.DefaultSigner{}).Hash(ctx, in)
}

// GetSigningMethodLength is the hash size behind at_hash/c_hash: SHA-256 for
// both RS256 and ES256.
func (s *rotatingSigner) GetSigningMethodLength(ctx context.Context) int {
	return jwt.SHA256HashSize
}
