package clients

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"

	josev4 "github.com/go-jose/go-jose/v4"

	"github.com/authd/authd/internal/problem"
)

// registeredKeys is what a client registers for private_key_jwt: its key
// set (normalised JSON) or none, and the one assertion alg fosite enforces.
type registeredKeys struct {
	jwks json.RawMessage
	alg  string
}

// minRSABits is the smallest RSA key accepted for RS256 (RFC 7518 §3.3).
const minRSABits = 2048

// clientKeys validates the key material of a client authenticating with
// method. Only private_key_jwt clients carry keys; for them the alg is the
// one given, or the one the keys imply, and every key must be able to
// verify it: fosite checks the assertion's alg first and then looks for a
// key of the matching type with use "sig", so a key that fails either test
// would be registered and then never work.
func clientKeys(method string, s Spec) (registeredKeys, error) {
	if method != "private_key_jwt" {
		// A client authenticates with exactly its one method: keys left
		// over from an earlier private_key_jwt registration are dropped.
		return registeredKeys{}, nil
	}
	switch {
	case len(s.JWKS) > 0 && s.JWKSURI != "":
		return registeredKeys{}, problem.Invalid("jwks", "give jwks or jwks_uri, not both")
	case s.JWKSURI != "":
		if err := checkJWKSURI(s.JWKSURI); err != nil {
			return registeredKeys{}, problem.Invalid("jwks_uri", err.Error())
		}
		alg := s.TokenEndpointAuthSigningAlg
		if alg == "" {
			alg = "RS256" // OIDC's default; the keys are not known yet
		}
		return registeredKeys{alg: alg}, nil
	case len(s.JWKS) == 0:
		return registeredKeys{}, problem.Invalid("jwks", "private_key_jwt needs the client's public key set (jwks or jwks_uri)")
	}
	set, err := parseClientJWKS(s.JWKS)
	if err != nil {
		return registeredKeys{}, problem.Invalid("jwks", err.Error())
	}
	alg := s.TokenEndpointAuthSigningAlg
	if alg == "" {
		if alg, err = inferAlg(set); err != nil {
			return registeredKeys{}, problem.Invalid("token_endpoint_auth_signing_alg", err.Error())
		}
	}
	for i, k := range set.Keys {
		if err := keyVerifies(k, alg); err != nil {
			return registeredKeys{}, problem.Invalid("jwks", fmt.Sprintf("key %d (kid %q) %v", i, k.KeyID, err))
		}
	}
	raw, err := json.Marshal(set)
	if err != nil {
		return registeredKeys{}, problem.Invalid("jwks", err.Error())
	}
	return registeredKeys{jwks: raw, alg: alg}, nil
}

// parseClientJWKS parses a non-empty set of valid public keys, marking keys
// without "use" as signing keys.
func parseClientJWKS(raw json.RawMessage) (*josev4.JSONWebKeySet, error) {
	var set josev4.JSONWebKeySet
	if err := json.Unmarshal(raw, &set); err != nil {
		// Not the decoder's text: it names Go packages and types.
		return nil, errors.New(`not a JSON Web Key Set: {"keys": [...]} whose keys are RSA or EC public keys with their parameters base64url-encoded (RFC 7517, RFC 7518 §6)`)
	}
	if len(set.Keys) == 0 {
		return nil, errors.New("the key set is empty")
	}
	for i := range set.Keys {
		k := &set.Keys[i]
		if !k.IsPublic() {
			return nil, errors.New("the key set contains a private key; register public keys only")
		}
		if !k.Valid() {
			return nil, errors.New("the key set contains an invalid key")
		}
		switch k.Use {
		case "":
			k.Use = "sig"
		case "sig":
		default:
			return nil, fmt.Errorf("key %q has use %q; client assertion keys need use \"sig\"", k.KeyID, k.Use)
		}
	}
	return &set, nil
}

// inferAlg is ES256 for a set of P-256 keys and RS256 for a set of RSA keys.
func inferAlg(set *josev4.JSONWebKeySet) (string, error) {
	algs := map[string]bool{}
	for _, k := range set.Keys {
		switch key := k.Key.(type) {
		case *ecdsa.PublicKey:
			if key.Curve != elliptic.P256() {
				return "", fmt.Errorf("key %q is on curve %s; only P-256 (ES256) is supported", k.KeyID, key.Curve.Params().Name)
			}
			algs["ES256"] = true
		case *rsa.PublicKey:
			algs["RS256"] = true
		default:
			return "", fmt.Errorf("key %q is neither an RSA nor a P-256 key", k.KeyID)
		}
	}
	if len(algs) != 1 {
		return "", errors.New("the key set mixes RSA and EC keys; say which alg assertions use (RS256 or ES256)")
	}
	for a := range algs {
		return a, nil
	}
	return "", errors.New("no keys")
}

// keyVerifies reports why k cannot verify a signature made with alg.
func keyVerifies(k josev4.JSONWebKey, alg string) error {
	if k.Algorithm != "" && k.Algorithm != alg {
		return fmt.Errorf("is for %s, but assertions must use %s", k.Algorithm, alg)
	}
	switch key := k.Key.(type) {
	case *ecdsa.PublicKey:
		if alg != "ES256" || key.Curve != elliptic.P256() {
			return fmt.Errorf("is an EC key and cannot verify %s", alg)
		}
	case *rsa.PublicKey:
		if alg != "RS256" {
			return fmt.Errorf("is an RSA key and cannot verify %s", alg)
		}
		if key.N.BitLen() < minRSABits {
			return fmt.Errorf("is shorter than %d bits", minRSABits)
		}
	default:
		return fmt.Errorf("cannot verify %s", alg)
	}
	return nil
}

// checkJWKSURI accepts https URLs, and http on a loopback host for local
// development, like redirect URIs.
func checkJWKSURI(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Host == "" {
		return fmt.Errorf("%q is not an absolute URL", raw)
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && IsLoopbackHost(u.Hostname()):
	default:
		return fmt.Errorf("%q: use https (http only on a loopback host)", raw)
	}
	if u.Fragment != "" {
		return fmt.Errorf("%q must not have a fragment", raw)
	}
	return nil
}
