package problem_test

import (
	"encoding/json"
	"errors"
	"mime"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/authd/authd/internal/problem"
)

// FuzzDecodeJSON: DecodeJSON accepts exactly one valid UTF-8 JSON object
// of known fields under a JSON content type; anything else is a
// *problem.Error with a 4xx status, never a panic.
func FuzzDecodeJSON(f *testing.F) {
	for _, s := range []struct{ body, ct string }{
		{`{"name":"a","amount":1}`, "application/json"}, {`{"name":"a"}}`, "application/json"}, {`{"name":"a"}]`, ""},
		{`{"name":"a"} {"name":"b"}`, "application/json"}, {`{"name":"\xff"}`, "application/json"}, {`{"nope":1}`, "application/json"},
		{`{"amount":"1"}`, "application/problem+json"}, {`[]`, "application/json"}, {``, "application/json"}, {`null`, "application/json"},
		{`{"name":"a"}`, "text/plain"}, {`{"name":"a"}`, "application/json; charset=%%"}, {"\ufeff{}", "application/json"},
		{`{"amount":1e999}`, "application/json"}, {`{"name":"a","name":"b"}`, "application/json"}, {strings.Repeat(`[`, 100000), "application/json"},
		{`{"tags":["a",1]}`, "application/json"}, {`{"name":"\ud800"}`, "application/json"},
	} {
		f.Add([]byte(s.body), s.ct)
	}
	type body struct {
		Name   string          `json:"name"`
		Amount int64           `json:"amount"`
		Tags   []string        `json:"tags"`
		Raw    json.RawMessage `json:"raw"`
	}
	f.Fuzz(func(t *testing.T, b []byte, ct string) {
		r := httptest.NewRequest(http.MethodPost, "/x", strings.NewReader(string(b)))
		if ct != "" {
			r.Header.Set("Content-Type", ct)
		}
		var dst body
		err := problem.DecodeJSON(httptest.NewRecorder(), r, &dst)
		if err != nil {
			var pe *problem.Error
			if !errors.As(err, &pe) || pe.Status < 400 || pe.Status >= 500 {
				t.Fatalf("%q: %v is not a 4xx problem", b, err)
			}
			return
		}
		if !utf8.Valid(b) || !json.Valid(b) || len(b) > problem.MaxJSONBody {
			t.Fatalf("accepted %q (valid UTF-8 %v, valid JSON %v)", b, utf8.Valid(b), json.Valid(b))
		}
		var top map[string]json.RawMessage
		if json.Unmarshal(b, &top) != nil {
			t.Fatalf("accepted %q, which is not a JSON object", b)
		}
		if ct != "" {
			mt, _, err := mime.ParseMediaType(ct)
			if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
				t.Fatalf("accepted content type %q", ct)
			}
		}
	})
}
