package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/authd/authd/internal/openapi"
)

const adminPrefix = "/admin/v1"

var operationKeys = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

// documentedRoutes lists the document's operations as "METHOD /path".
func documentedRoutes(doc map[string]any) []string {
	var out []string
	paths, _ := doc["paths"].(map[string]any)
	for p, item := range paths {
		for m := range item.(map[string]any) {
			if slices.Contains(operationKeys, m) {
				out = append(out, strings.ToUpper(m)+" "+p)
			}
		}
	}
	sort.Strings(out)
	return out
}

// loadDoc decodes an embedded OpenAPI document (numbers kept exact).
func loadDoc(t *testing.T, name string, b []byte) map[string]any {
	t.Helper()
	var doc map[string]any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&doc); err != nil {
		t.Fatalf("the %s OpenAPI document is not JSON: %v", name, err)
	}
	return doc
}

func loadAdminDoc(t *testing.T) map[string]any { return loadDoc(t, "admin", openapi.Admin()) }

// checkDocumentsExactly fails unless the router's routes under prefix and
// the document's operations are the same set; min guards against a router
// on which the API was not mounted at all.
func checkDocumentsExactly(t *testing.T, prefix, file string, doc map[string]any, min int) {
	t.Helper()
	routes := routesUnder(t, prefix)
	documented := documentedRoutes(doc)
	if len(routes) < min {
		t.Fatalf("only %d %s routes found: is the API mounted? %v", len(routes), prefix, routes)
	}
	for _, r := range routes {
		if !slices.Contains(documented, r) {
			t.Errorf("route %s is not documented in %s", r, file)
		}
	}
	for _, d := range documented {
		if !slices.Contains(routes, d) {
			t.Errorf("documented operation %s does not exist on the router", d)
		}
	}
}

func TestOpenAPI_DocumentsExactlyTheAdminRoutes(t *testing.T) {
	checkDocumentsExactly(t, adminPrefix, "internal/openapi/admin.json", loadAdminDoc(t), 20)
}

func TestOpenAPI_ServedToAdminsOnly(t *testing.T) {
	e := newAdminEnv(t)
	st, b := e.call("GET", "/admin/v1/openapi.json", e.adminToken, nil)
	if st != http.StatusOK || !bytes.Equal(b, openapi.Admin()) {
		t.Fatalf("GET /admin/v1/openapi.json: %d (%d bytes), want the embedded document", st, len(b))
	}
	st, b = e.call("GET", "/admin/v1/openapi.json", "", nil)
	wantProblem(t, "without a token", st, b, 401, "unauthorized")
}

func TestOpenAPI_ValidOpenAPI31(t *testing.T) { checkOpenAPI31(t, loadAdminDoc(t), adminPrefix) }

// checkOpenAPI31 checks the structure OpenAPI 3.1 requires of what a
// document served under prefix uses; it is not a full JSON Schema validation.
func checkOpenAPI31(t *testing.T, doc map[string]any, prefix string) {
	t.Helper()
	if v, _ := doc["openapi"].(string); !regexp.MustCompile(`^3\.1\.\d+$`).MatchString(v) {
		t.Errorf("openapi = %q, want 3.1.x", v)
	}
	info, _ := doc["info"].(map[string]any)
	if s, _ := info["title"].(string); s == "" {
		t.Error("info.title is required")
	}
	if s, _ := info["version"].(string); s == "" {
		t.Error("info.version is required")
	}
	if servers, _ := doc["servers"].([]any); len(servers) != 1 || servers[0].(map[string]any)["url"] != prefix {
		t.Errorf("servers = %v, want one with url %s", doc["servers"], prefix)
	}
	schemes, _ := doc["components"].(map[string]any)["securitySchemes"].(map[string]any)
	checkSecurity := func(where string, raw any) {
		for _, req := range raw.([]any) {
			for name := range req.(map[string]any) {
				if schemes[name] == nil {
					t.Errorf("%s: security requirement %q has no securityScheme", where, name)
				}
			}
		}
	}
	checkSecurity("document", doc["security"])

	paths, _ := doc["paths"].(map[string]any)
	if len(paths) == 0 {
		t.Fatal("no paths")
	}
	opIDs := map[string]string{}
	statusRE := regexp.MustCompile(`^([1-5]\d\d|[1-5]XX|default)$`)
	for p, rawItem := range paths {
		item := rawItem.(map[string]any)
		if !strings.HasPrefix(p, "/") {
			t.Errorf("path %q must start with /", p)
		}
		for key := range item {
			if !slices.Contains(operationKeys, key) && !slices.Contains([]string{"parameters", "summary", "description", "servers", "$ref"}, key) {
				t.Errorf("%s: unknown path item field %q", p, key)
			}
		}
		pathParams := params(t, doc, item["parameters"])
		for _, m := range operationKeys {
			rawOp, ok := item[m]
			if !ok {
				continue
			}
			op := rawOp.(map[string]any)
			where := strings.ToUpper(m) + " " + p
			if id, _ := op["operationId"].(string); id == "" {
				t.Errorf("%s: operationId missing", where)
			} else if prev, dup := opIDs[id]; dup {
				t.Errorf("%s: operationId %q already used by %s", where, id, prev)
			} else {
				opIDs[id] = where
			}
			if sec, ok := op["security"]; ok {
				checkSecurity(where, sec)
			}
			responses, _ := op["responses"].(map[string]any)
			if len(responses) == 0 {
				t.Errorf("%s: no responses", where)
			}
			for code, r := range responses {
				if !statusRE.MatchString(code) {
					t.Errorf("%s: response key %q is not a status code", where, code)
				}
				if d, _ := resolve(t, doc, r)["description"].(string); d == "" {
					t.Errorf("%s %s: a response needs a description", where, code)
				}
			}
			declared := map[string]bool{}
			for name, in := range pathParams {
				declared[name] = in
			}
			for name, in := range params(t, doc, op["parameters"]) {
				declared[name] = in
			}
			for _, m := range regexp.MustCompile(`\{([^}]+)\}`).FindAllStringSubmatch(p, -1) {
				if !declared[m[1]] {
					t.Errorf("%s: path parameter {%s} not declared as a required path parameter", where, m[1])
				}
			}
		}
	}
	checkRefs(t, doc, doc, "#")
}

// params resolves a parameter list into name → "is a required path parameter".
func params(t *testing.T, doc map[string]any, raw any) map[string]bool {
	out := map[string]bool{}
	list, _ := raw.([]any)
	for _, p := range list {
		pm := resolve(t, doc, p)
		name, _ := pm["name"].(string)
		in, _ := pm["in"].(string)
		if name == "" || !slices.Contains([]string{"query", "header", "path", "cookie"}, in) {
			t.Errorf("parameter %v needs a name and a valid in", pm)
		}
		if pm["schema"] == nil && pm["content"] == nil {
			t.Errorf("parameter %s needs a schema", name)
		}
		out[name] = in == "path" && pm["required"] == true
	}
	return out
}

// resolve follows a $ref (if any) to the object it names.
func resolve(t *testing.T, doc map[string]any, v any) map[string]any {
	m, _ := v.(map[string]any)
	if ref, ok := m["$ref"].(string); ok {
		target, err := pointer(doc, ref)
		if err != nil {
			t.Errorf("%v", err)
			return map[string]any{}
		}
		return resolve(t, doc, target)
	}
	return m
}

// pointer resolves a local JSON reference "#/a/b".
func pointer(doc map[string]any, ref string) (any, error) {
	if !strings.HasPrefix(ref, "#/") {
		return nil, fmt.Errorf("$ref %q is not local", ref)
	}
	var cur any = doc
	for _, tok := range strings.Split(ref[2:], "/") {
		tok = strings.NewReplacer("~1", "/", "~0", "~").Replace(tok)
		m, ok := cur.(map[string]any)
		if !ok || m[tok] == nil {
			return nil, fmt.Errorf("$ref %q does not resolve", ref)
		}
		cur = m[tok]
	}
	return cur, nil
}

// checkRefs walks the whole document and fails for any $ref that does not resolve.
func checkRefs(t *testing.T, doc map[string]any, v any, at string) {
	switch x := v.(type) {
	case map[string]any:
		if ref, ok := x["$ref"]; ok {
			s, _ := ref.(string)
			if _, err := pointer(doc, s); err != nil {
				t.Errorf("at %s: %v", at, err)
			}
		}
		for k, child := range x {
			checkRefs(t, doc, child, at+"/"+k)
		}
	case []any:
		for i, child := range x {
			checkRefs(t, doc, child, fmt.Sprintf("%s/%d", at, i))
		}
	}
}
