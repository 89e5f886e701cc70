package httpx

import (
	"errors"
	"net/http"

	"github.com/authd/authd/internal/problem"
)

// errBodyTooLarge: a request declared a body over LimitBody's bound.
var errBodyTooLarge = errors.New("httpx: request body too large")

// wireErrors are the middleware's own answers (a panic is answered as any
// unknown error: problem.Write's 500).
var wireErrors = problem.Table{
	{Err: errBodyTooLarge, Status: http.StatusRequestEntityTooLarge, Code: "body_too_large", Title: "Request Entity Too Large",
		Detail: "the request body is too large"},
}
