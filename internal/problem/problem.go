// Package problem renders errors of authd's JSON APIs as RFC 9457 problem
// documents (application/problem+json). Domain packages return *Error values
// (or errors wrapping them); anything else becomes a generic 500 that is logged
// in full but says nothing about internals to the client.
package problem

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"go.uber.org/zap"

	"github.com/authd/authd/internal/reqctx"
	"github.com/authd/authd/storage"
)

// TypePrefix starts every problem type URI; the code follows it, so clients
// can match on the suffix (e.g. "insufficient_credits").
const TypePrefix = "urn:authd:problem:"

// Error is an API error with a stable machine code.
type Error struct {
	Status int    // HTTP status
	Code   string // stable code, the suffix of the problem type
	Title  string // short, human, constant per code
	Detail string // human explanation of this occurrence; never secrets
	Field  string // the offending request field, for validation errors
	Err    error  // cause, for logs and errors.Is; never rendered
	// Extra members rendered beside the standard ones (e.g. "balance").
	Extra map[string]any
	// RetryAfter is the Retry-After of a 503 in seconds (0: 1 second).
	RetryAfter int
}

func (e *Error) Error() string {
	msg := e.Code
	if e.Detail != "" {
		msg += ": " + e.Detail
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Err }

// New returns an Error with the given status, code and detail.
func New(status int, code, detail string) *Error {
	return &Error{Status: status, Code: code, Title: http.StatusText(status), Detail: detail}
}

// Invalid is a 400 naming the offending field.
func Invalid(field, detail string) *Error {
	return &Error{Status: http.StatusBadRequest, Code: "invalid_request", Title: "Invalid request", Field: field, Detail: detail}
}

// Common errors.
var (
	ErrUnauthorized = &Error{Status: http.StatusUnauthorized, Code: "unauthorized", Title: "Unauthorized", Detail: "a valid bearer access token is required"}
	ErrForbidden    = &Error{Status: http.StatusForbidden, Code: "forbidden", Title: "Forbidden", Detail: "the token does not grant access to this resource"}
	ErrNotFound     = &Error{Status: http.StatusNotFound, Code: "not_found", Title: "Not Found", Detail: "no such resource"}
	// ErrMethodNotAllowed answers a method a route does not serve.
	ErrMethodNotAllowed = &Error{Status: http.StatusMethodNotAllowed, Code: "method_not_allowed", Title: "Method Not Allowed",
		Detail: "this method is not allowed on this resource"}
	ErrUnavailable = &Error{Status: http.StatusServiceUnavailable, Code: "unavailable", Title: "Service Unavailable", Detail: "the service is temporarily unavailable; retry later"}
)

type document struct {
	Type      string `json:"type"`
	Title     string `json:"title"`
	Status    int    `json:"status"`
	Detail    string `json:"detail,omitempty"`
	Instance  string `json:"instance,omitempty"`
	Field     string `json:"field,omitempty"`
	RequestID string `json:"request_id,omitempty"`
}

// Unavailable is the 503 for a database outage: the reason in the detail,
// retryAfter seconds in the Retry-After header.
func Unavailable(o storage.Outage, cause error) *Error {
	return &Error{Status: http.StatusServiceUnavailable, Code: "unavailable", Title: "Service Unavailable",
		Detail: "the service is temporarily unavailable: " + o.Reason + "; retry later", Err: cause,
		RetryAfter: o.RetryAfterSeconds()}
}

// Write renders err as a problem document. A database failure (see
// storage.Classify) becomes a 503 naming its reason, with Retry-After;
// other unknown errors become a 500 and are logged with the request id.
func Write(w http.ResponseWriter, r *http.Request, err error) {
	var pe *Error
	if !errors.As(err, &pe) {
		if o, ok := storage.Classify(err); ok {
			pe = Unavailable(o, err)
			reqctx.Logger(r.Context()).Warn("database unavailable", zap.String("reason", o.Reason), zap.Error(err))
		} else {
			reqctx.Logger(r.Context()).Error("internal error", zap.Error(err))
			pe = &Error{Status: http.StatusInternalServerError, Code: "internal", Title: "Internal Server Error", Detail: "an unexpected error occurred; it has been logged"}
		}
	}
	doc := document{
		Type: TypePrefix + pe.Code, Title: pe.Title, Status: pe.Status, Detail: pe.Detail,
		Instance: r.URL.Path, Field: pe.Field, RequestID: reqctx.RequestID(r.Context()),
	}
	if doc.Title == "" {
		doc.Title = http.StatusText(pe.Status)
	}
	body := map[string]any{}
	for k, v := range pe.Extra {
		body[k] = v
	}
	b, _ := json.Marshal(doc)
	_ = json.Unmarshal(b, &body)
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-store")
	if pe.Status == http.StatusServiceUnavailable && w.Header().Get("Retry-After") == "" {
		w.Header().Set("Retry-After", strconv.Itoa(max(1, pe.RetryAfter)))
	}
	w.WriteHeader(pe.Status)
	_ = json.NewEncoder(w).Encode(body)
}

// MaxJSONBody bounds API request bodies.
const MaxJSONBody = 64 << 10

// bodyTooLarge is DecodeJSON's answer to a body over MaxJSONBody.
func bodyTooLarge() *Error {
	return &Error{Status: http.StatusRequestEntityTooLarge, Code: "body_too_large", Title: "Request Entity Too Large",
		Detail: fmt.Sprintf("the request body exceeds %d bytes", MaxJSONBody)}
}

// DecodeJSON reads a JSON object from r into dst. It requires a JSON content
// type, rejects unknown fields, trailing data and oversized bodies, and
// returns an *Error naming the problem.
func DecodeJSON(w http.ResponseWriter, r *http.Request, dst any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			return &Error{Status: http.StatusUnsupportedMediaType, Code: "unsupported_media_type", Title: "Unsupported Media Type", Detail: "the request body must be application/json"}
		}
	}
	// Read it whole (it is bounded) to refuse invalid UTF-8, which the JSON
	// decoder would silently turn into U+FFFD (RFC 8259 §8.1).
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxJSONBody))
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return bodyTooLarge()
	case err != nil:
		return Invalid("", "the request body could not be read")
	case !utf8.Valid(body):
		return Invalid("", "the request body is not valid UTF-8")
	}
	if dup, ok := duplicateKey(body); ok {
		return Invalid(dup, fmt.Sprintf("field %q appears more than once", dup))
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		var mbe *http.MaxBytesError
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &mbe):
			return bodyTooLarge()
		case errors.Is(err, io.EOF):
			return Invalid("", "the request body is empty; a JSON object is required")
		case errors.As(err, &se):
			return Invalid("", fmt.Sprintf("malformed JSON at byte %d", se.Offset))
		case errors.As(err, &te):
			return Invalid(te.Field, fmt.Sprintf("field %q must be a %s", te.Field, te.Type))
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
			return Invalid(name, fmt.Sprintf("unknown field %q", name))
		default:
			return Invalid("", "malformed JSON body")
		}
	}
	// Not dec.More: it reports false before a stray '}' or ']'.
	if _, err := dec.Token(); err != io.EOF {
		return Invalid("", "unexpected data after the JSON object")
	}
	return nil
}

// WriteJSON writes v as JSON with the given status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// duplicateKey finds an object key given twice in one object of body,
// comparing case-insensitively as encoding/json matches fields: a parser
// taking the first and one taking the last would disagree on what was asked
// ({"email":"a","Email":"b"}). Syntax errors are left to the decoder.
func duplicateKey(body []byte) (string, bool) {
	dec := json.NewDecoder(bytes.NewReader(body))
	type frame struct {
		object bool
		keys   map[string]bool
		key    bool // the next string token is a key
	}
	var stack []*frame
	for {
		tok, err := dec.Token()
		if err != nil {
			return "", false
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if k, isStr := tok.(string); isStr && top != nil && top.object && top.key {
			// Upper then lower folds as json does: "ſ" and "s", "K" (Kelvin) and "k".
			lk := strings.ToLower(strings.ToUpper(k))
			if top.keys[lk] {
				return k, true
			}
			top.keys[lk] = true
			top.key = false
			continue
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, &frame{object: true, keys: map[string]bool{}, key: true})
			continue
		case json.Delim('['):
			stack = append(stack, &frame{})
			continue
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
		}
		// A value ended: in an object, a key comes next.
		if len(stack) > 0 && stack[len(stack)-1].object {
			stack[len(stack)-1].key = true
		}
	}
}

// Wire is how one domain error goes on the wire: its stable code, status
// and title, the field it concerns, and the detail shown for it.
type Wire struct {
	Err    error // a sentinel, matched with errors.Is
	Status int
	Code   string
	Title  string
	Field  string
	Detail string
}

// Table is a package's wire errors, one entry per sentinel; the package's
// handlers translate their errors through it, so the domain errors carry no
// HTTP status.
type Table []Wire

// Map returns the *Error for the first entry err matches, wrapping err, or
// err itself when it matches none.
func (t Table) Map(err error) error {
	if pe, ok := t.Find(err); ok {
		return pe
	}
	return err
}

// Find returns the *Error for the first entry err matches, wrapping err.
func (t Table) Find(err error) (*Error, bool) {
	for _, e := range t {
		if errors.Is(err, e.Err) {
			return &Error{Status: e.Status, Code: e.Code, Title: e.Title, Field: e.Field, Detail: e.Detail, Err: err}, true
		}
	}
	return nil, false
}
