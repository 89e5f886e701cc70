package clients

import (
	"errors"
	"net/http"

	"github.com/authd/authd/internal/problem"
)

var (
	// ErrNotFound is returned for an unknown client id.
	ErrNotFound = errors.New("clients: no such client")
	// ErrExists is returned when a requested client id is taken.
	ErrExists = errors.New("clients: a client with this id already exists")
)

// wireErrors are the registry's errors as the JSON APIs and the console
// answer them. Validation errors are already *problem.Error values naming
// their field (problem.Invalid).
var wireErrors = problem.Table{
	{Err: ErrNotFound, Status: http.StatusNotFound, Code: "client_not_found", Title: "Not Found", Detail: "No such OAuth client."},
	{Err: ErrExists, Status: http.StatusConflict, Code: "client_exists", Title: "Conflict", Detail: "An OAuth client with this id already exists."},
}

// Problem translates a registry error for an API answer or the console;
// errors it does not know pass through.
func Problem(err error) error { return wireErrors.Map(err) }
