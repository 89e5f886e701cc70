package resource

import "errors"

// ErrInvalidToken is wrapped by every verification failure that is the
// token's fault: malformed, bad signature, unknown key, wrong typ, iss or
// aud, expired, not yet valid, or revoked (online mode). The middleware
// answers 401 with error="invalid_token".
var ErrInvalidToken = errors.New("resource: invalid access token")

// ErrUnavailable is wrapped when a token cannot be checked because authd
// (discovery, JWKS or introspection) cannot be reached. The middleware
// answers 503: it is not the client's fault.
var ErrUnavailable = errors.New("resource: authorization server unavailable")
