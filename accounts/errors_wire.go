package accounts

import (
	"errors"
	"net/http"

	"github.com/authd/authd/internal/problem"
)

// Errors of the API handlers themselves (not of the Service).
var (
	// errClientRegistrationOff: registration named a client, and
	// registration through a client (the password grant) is not wired.
	errClientRegistrationOff = errors.New("accounts: registration with client credentials is not enabled")
	// errClientAuthentication: the client registering the user did not
	// authenticate as a first-party client.
	errClientAuthentication = errors.New("accounts: client authentication failed")
	// errNotUserToken: a user's endpoint called with a token of no user.
	errNotUserToken = errors.New("accounts: the token is not a user's")
)

// wireErrors are the package's sentinel errors as its JSON APIs answer
// them (ProblemFor, and the admin API's adminProblem); the errors that carry
// figures (a policy's field, a throttle's wait) are translated beside them.
var wireErrors = problem.Table{
	{Err: ErrInvalidEmail, Status: http.StatusBadRequest, Code: "invalid_request", Title: "Invalid request", Field: "email",
		Detail: "email must be a valid email address"},
	{Err: ErrEmailTaken, Status: http.StatusConflict, Code: "email_taken", Title: "Conflict", Field: "email",
		Detail: "an account with this email already exists"},
	{Err: ErrInvalidToken, Status: http.StatusBadRequest, Code: "invalid_token", Title: "Invalid or expired link", Field: "token",
		Detail: "the link is invalid, expired or already used"},
	{Err: ErrReauthRequired, Status: http.StatusForbidden, Code: "reauthentication_required", Title: "Forbidden", Field: "current_password",
		Detail: "this change needs the current password (current_password) or a login within the last few minutes"},
	{Err: ErrWrongPassword, Status: http.StatusBadRequest, Code: "wrong_password", Title: "Invalid request", Field: "current_password",
		Detail: "the current password is wrong"},
	{Err: ErrAlreadyVerified, Status: http.StatusConflict, Code: "already_verified", Title: "Conflict",
		Detail: "the email address is already verified"},
	{Err: ErrUnknownRole, Status: http.StatusNotFound, Code: "role_not_found", Title: "Not Found", Detail: "no such role"},
	{Err: ErrInvalidRole, Status: http.StatusBadRequest, Code: "invalid_request", Title: "Invalid request", Field: "name",
		Detail: "a role name matches ^[a-z][a-z0-9_.:-]{0,63}$ and its description has at most 500 bytes"},
	{Err: ErrRoleExists, Status: http.StatusConflict, Code: "role_exists", Title: "Conflict", Detail: "a role with this name already exists"},
	{Err: ErrRoleInUse, Status: http.StatusConflict, Code: "role_in_use", Title: "Conflict",
		Detail: "the role is still assigned to users; remove it from them first"},
	{Err: ErrRoleBuiltin, Status: http.StatusConflict, Code: "role_builtin", Title: "Conflict", Detail: "built-in roles cannot be deleted"},
	{Err: ErrBadCursor, Status: http.StatusBadRequest, Code: "invalid_request", Title: "Invalid request", Field: "cursor",
		Detail: "the cursor is not one this listing returned"},
	{Err: errClientRegistrationOff, Status: http.StatusBadRequest, Code: "unsupported", Title: "Bad Request",
		Detail: "registration with client credentials is not enabled"},
	{Err: errClientAuthentication, Status: http.StatusUnauthorized, Code: "invalid_client", Title: "Unauthorized",
		Detail: "client authentication failed or the client is not first-party"},
	{Err: errNotUserToken, Status: http.StatusForbidden, Code: "forbidden", Title: "Forbidden",
		Detail: "this endpoint needs a token issued for a user"},
}

// adminWireErrors are the admin API's: it names an unknown user, where the
// user's own API answers a plain not_found (ProblemFor).
var adminWireErrors = append(problem.Table{
	{Err: ErrNotFound, Status: http.StatusNotFound, Code: "user_not_found", Title: "Not Found", Detail: "no such user"},
}, wireErrors...)
