package problem_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/authd/authd/internal/problem"
)

// Two parsers that take the first and the last of a repeated key disagree
// on what was asked; the body is refused instead.
func TestDecodeJSON_DuplicateKeys(t *testing.T) {
	type inner struct {
		A string `json:"a"`
	}
	type body struct {
		Email string  `json:"email"`
		Name  string  `json:"name"`
		In    inner   `json:"in"`
		List  []inner `json:"list"`
	}
	for _, tc := range []struct {
		name, in string
		dup      string // "" = accepted
	}{
		{"OK", `{"email":"a@example.com","name":"x","in":{"a":"1"},"list":[{"a":"1"},{"a":"2"}]}`, ""},
		{"OKSameKeyInSiblingObjects", `{"list":[{"a":"1"},{"a":"1"}],"in":{"a":"2"}}`, ""},
		{"ErrDuplicate", `{"email":"a@example.com","email":"b@example.com"}`, "email"},
		{"ErrCaseOnlyDuplicate", `{"email":"a@example.com","EMAIL":"b@example.com"}`, "EMAIL"},
		{"ErrFoldedDuplicate", `{"name":"a","nameſ":"x","NAME":"b"}`, "NAME"},
		{"ErrNestedDuplicate", `{"in":{"a":"1","A":"2"}}`, "A"},
		{"ErrDuplicateAfterNested", `{"in":{"a":"1"},"name":"x","In":{}}`, "In"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(tc.in))
			r.Header.Set("Content-Type", "application/json")
			var b body
			err := problem.DecodeJSON(httptest.NewRecorder(), r, &b)
			if tc.dup == "" {
				if err != nil && strings.Contains(err.Error(), "more than once") {
					t.Fatalf("refused as duplicate: %v", err)
				}
				return
			}
			var pe *problem.Error
			if !errors.As(err, &pe) || pe.Status != http.StatusBadRequest || pe.Field != tc.dup {
				t.Fatalf("err = %#v, want 400 naming %q", err, tc.dup)
			}
		})
	}
}
