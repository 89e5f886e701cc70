package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/authd/authd/internal/config"
	"github.com/authd/authd/internal/openapi"
	"github.com/authd/authd/oauth/clients"
	"github.com/authd/authd/storage/storagetest"
)

const publicPrefix = "/api/v1"

// routesUnder builds the application as serveRuntime does and returns its
// routes below prefix as "METHOD /path" (path without the prefix).
func routesUnder(t *testing.T, prefix string) []string {
	t.Helper()
	db := storagetest.NewDB(t)
	cfg, err := config.FromEnv([]string{"AUTHD_SECRETS_KEY=MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=", "AUTHD_BCRYPT_COST=4"})
	if err != nil {
		t.Fatal(err)
	}
	cfg.DatabaseURL = db.URL
	ctx, cancel := context.WithCancel(context.Background())
	rt := &runtime{cfg: cfg, log: zap.NewNop(), pool: db.Pool, reg: prometheus.NewRegistry(), ready: make(chan struct{})}
	a, err := buildApp(ctx, rt)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); a.wait(); a.close() })

	var routes []string
	err = a.router.Walk(func(route *mux.Route, _ *mux.Router, _ []*mux.Route) error {
		tpl, err := route.GetPathTemplate()
		if err != nil || !strings.HasPrefix(tpl, prefix+"/") {
			return nil // the prefix route itself, subrouters without a path, everything else
		}
		methods, err := route.GetMethods()
		if err != nil {
			t.Errorf("route %s accepts every method; give it Methods()", tpl)
			return nil
		}
		for _, m := range methods {
			routes = append(routes, m+" "+strings.TrimPrefix(tpl, prefix))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(routes)
	return routes
}

func loadPublicDoc(t *testing.T) map[string]any { return loadDoc(t, "public", openapi.Public()) }

func TestPublicOpenAPI_DocumentsExactlyThePublicRoutes(t *testing.T) {
	checkDocumentsExactly(t, publicPrefix, "internal/openapi/public.json", loadPublicDoc(t), 15)
}

func TestPublicOpenAPI_ValidOpenAPI31(t *testing.T) {
	checkOpenAPI31(t, loadPublicDoc(t), publicPrefix)
}

// TestPublicOpenAPI_SecurityMatchesTheRouter calls every documented
// operation without a token: exactly those the document marks as needing
// bearerAuth must answer 401, and the document is served to anyone.
func TestPublicOpenAPI_SecurityMatchesTheRouter(t *testing.T) {
	db := storagetest.NewDB(t)
	ts := startServer(t, db.URL, nil, nil)
	doc := loadPublicDoc(t)
	for _, route := range documentedRoutes(doc) {
		method, path, _ := strings.Cut(route, " ")
		op := doc["paths"].(map[string]any)[path].(map[string]any)[strings.ToLower(method)].(map[string]any)
		sec, ok := op["security"].([]any)
		if !ok {
			sec = doc["security"].([]any)
		}
		needsToken := len(sec) > 0
		concrete := regexp.MustCompile(`\{[^}]+\}`).ReplaceAllString(path, "00000000-0000-4000-8000-000000000000")
		req, _ := http.NewRequest(method, ts.URL+publicPrefix+concrete, strings.NewReader("{}"))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got := resp.StatusCode == http.StatusUnauthorized; got != needsToken {
			t.Errorf("%s without a token: %d, but the document says needs a token = %v", route, resp.StatusCode, needsToken)
		}
	}

	st, body := get(t, ts.URL+publicPrefix+"/openapi.json")
	if st != http.StatusOK || body != string(openapi.Public()) {
		t.Fatalf("GET /api/v1/openapi.json: %d (%d bytes), want the embedded document", st, len(body))
	}
}

// conforms checks value against a schema of the document: types, required
// properties, enums and items, following $ref and allOf. It covers the
// subset of JSON Schema the document uses.
func conforms(doc map[string]any, schema map[string]any, value any, at string) []string {
	if ref, ok := schema["$ref"].(string); ok {
		target, err := pointer(doc, ref)
		if err != nil {
			return []string{err.Error()}
		}
		return conforms(doc, target.(map[string]any), value, at)
	}
	var errs []string
	for _, sub := range asList(schema["allOf"]) {
		errs = append(errs, conforms(doc, sub.(map[string]any), value, at)...)
	}
	if types := asList(schema["type"]); len(types) > 0 && !slices.ContainsFunc(types, func(t any) bool { return jsonType(value, t.(string)) }) {
		return append(errs, fmt.Sprintf("%s: %v is not of type %v", at, value, types))
	}
	if enum := asList(schema["enum"]); len(enum) > 0 && !slices.ContainsFunc(enum, func(e any) bool { return fmt.Sprint(e) == fmt.Sprint(value) }) {
		errs = append(errs, fmt.Sprintf("%s: %v is not one of %v", at, value, enum))
	}
	if obj, ok := value.(map[string]any); ok {
		for _, r := range asList(schema["required"]) {
			if _, ok := obj[r.(string)]; !ok {
				errs = append(errs, fmt.Sprintf("%s: required property %q missing", at, r))
			}
		}
		props, _ := schema["properties"].(map[string]any)
		for name, v := range obj {
			if ps, ok := props[name].(map[string]any); ok {
				errs = append(errs, conforms(doc, ps, v, at+"."+name)...)
			}
		}
	}
	if arr, ok := value.([]any); ok {
		if items, ok := schema["items"].(map[string]any); ok {
			for i, v := range arr {
				errs = append(errs, conforms(doc, items, v, fmt.Sprintf("%s[%d]", at, i))...)
			}
		}
	}
	return errs
}

func asList(v any) []any {
	switch x := v.(type) {
	case []any:
		return x
	case nil:
		return nil
	default:
		return []any{x}
	}
}

func jsonType(v any, t string) bool {
	switch t {
	case "object":
		_, ok := v.(map[string]any)
		return ok
	case "array":
		_, ok := v.([]any)
		return ok
	case "string":
		_, ok := v.(string)
		return ok
	case "boolean":
		_, ok := v.(bool)
		return ok
	case "null":
		return v == nil
	case "integer":
		n, ok := v.(json.Number)
		return ok && !strings.ContainsAny(n.String(), ".eE")
	case "number":
		_, ok := v.(json.Number)
		return ok
	}
	return false
}

// userToken is a password-grant access token with scope from a new
// first-party client allowed the credit scopes (the console client is not).
func (e *adminEnv) userToken(email, password, scope string) string {
	e.t.Helper()
	c, secret, err := e.clients.CreateClient(context.Background(), clients.Spec{
		Name: "credits app", FirstParty: true, GrantTypes: []string{"password"}, Scopes: strings.Fields(scope)})
	if err != nil {
		e.t.Fatal(err)
	}
	st, out := e.tokenEndpoint("/oauth2/token", c.ID, secret,
		url.Values{"grant_type": {"password"}, "username": {email}, "password": {password}, "scope": {scope}})
	if st != http.StatusOK {
		e.t.Fatalf("password grant for %s: %d %v", email, st, out)
	}
	return out["access_token"].(string)
}

// TestPublicOpenAPI_ResponsesMatchTheSchemas drives the main operations of
// the public API and checks each answer against the schema the document
// gives for its status.
func TestPublicOpenAPI_ResponsesMatchTheSchemas(t *testing.T) {
	e := newAdminEnv(t)
	doc := loadPublicDoc(t)
	check := func(method, path, docPath, token string, body any, want int) map[string]any {
		t.Helper()
		st, b := e.call(method, publicPrefix+path, token, body)
		if st != want {
			t.Fatalf("%s %s: %d, want %d: %s", method, path, st, want, b)
		}
		op := doc["paths"].(map[string]any)[docPath].(map[string]any)[strings.ToLower(method)].(map[string]any)
		resp := resolve(t, doc, op["responses"].(map[string]any)[fmt.Sprint(want)])
		if resp == nil {
			t.Fatalf("%s %s: status %d is not documented", method, docPath, want)
		}
		content, _ := resp["content"].(map[string]any)
		if len(content) == 0 {
			if len(b) != 0 {
				t.Errorf("%s %s: documented without a body, got %s", method, docPath, b)
			}
			return nil
		}
		var media map[string]any
		for _, m := range content {
			media = m.(map[string]any)
		}
		var v any
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.UseNumber()
		if err := dec.Decode(&v); err != nil {
			t.Fatalf("%s %s: not JSON: %s", method, path, b)
		}
		for _, msg := range conforms(doc, media["schema"].(map[string]any), v, method+" "+docPath) {
			t.Error(msg)
		}
		out, _ := v.(map[string]any)
		return out
	}

	reg := check("POST", "/register", "/register", "", map[string]string{"email": "ada@example.com", "password": "a fine long password", "name": "Ada"}, 201)
	check("POST", "/register", "/register", "", map[string]string{"email": "ada@example.com", "password": "a fine long password"}, 409)
	check("POST", "/register", "/register", "", map[string]string{"email": "bob@example.com", "password": "short"}, 400)
	check("POST", "/password/forgot", "/password/forgot", "", map[string]string{"email": "ada@example.com"}, 202)
	check("POST", "/password/reset", "/password/reset", "", map[string]string{"token": "not-a-token", "password": "another long password"}, 400)
	check("POST", "/email/verify", "/email/verify", "", map[string]string{"token": "not-a-token"}, 400)

	e.mustUser("cy@example.com", userPass)
	access := e.userToken("cy@example.com", userPass, "profile account credits:read credits:spend")
	check("GET", "/me", "/me", access, nil, 200)
	check("PATCH", "/me", "/me", access, map[string]string{"name": "Cy"}, 200)
	check("GET", "/me/sessions", "/me/sessions", access, nil, 200)
	check("DELETE", "/me/sessions/00000000-0000-4000-8000-000000000000", "/me/sessions/{id}", access, nil, 404)
	check("POST", "/me/password", "/me/password", access, map[string]string{"current_password": "wrong password!", "new_password": "another long password"}, 400)
	check("GET", "/credits", "/credits", access, nil, 200)

	_, svc := e.clientToken("credits:charge", "credits:grant")
	id := reg["id"].(string)
	check("POST", "/users/"+id+"/credits/grant", "/users/{id}/credits/grant", svc, map[string]any{"amount": 5, "reference": "welcome"}, 201)
	check("POST", "/users/"+id+"/credits/grant", "/users/{id}/credits/grant", svc, map[string]any{"amount": 5, "reference": "welcome"}, 200)
	check("POST", "/users/"+id+"/credits/spend", "/users/{id}/credits/spend", svc, map[string]any{"amount": 2, "reference": "s1", "description": "x"}, 201)
	check("POST", "/users/"+id+"/credits/spend", "/users/{id}/credits/spend", svc, map[string]any{"amount": 99, "reference": "s2"}, 409)
	check("GET", "/users/"+id+"/credits", "/users/{id}/credits", svc, nil, 200)
	page := check("GET", "/users/"+id+"/credits/transactions?limit=1", "/users/{id}/credits/transactions", svc, nil, 200)
	if page["next_cursor"] == nil {
		t.Error("two transactions with limit=1 should give a next_cursor")
	}
	check("GET", "/credits/transactions", "/credits/transactions", access, nil, 200)
	check("POST", "/credits/spend", "/credits/spend", access, map[string]any{"amount": 1, "reference": "r1"}, 409)
}
