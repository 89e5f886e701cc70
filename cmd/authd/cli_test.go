package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/authd/authd/storage/storagetest"
)

// runCLI runs the real command tree with env, returning stdout.
func runCLI(t *testing.T, env map[string]string, stdin string, args ...string) (string, error) {
	t.Helper()
	for k, v := range env {
		t.Setenv(k, v)
	}
	var out, errb bytes.Buffer
	cmd := newRootCmd(&out, &errb)
	cmd.SetIn(strings.NewReader(stdin))
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(context.Background())
	return out.String(), err
}

func TestCLI_ClientCreatePrintsSecretOnce(t *testing.T) {
	db := storagetest.NewDB(t)
	env := map[string]string{"AUTHD_DATABASE_URL": db.URL}
	out, err := runCLI(t, env, "", "client", "create", "--output", "json", "--name", "svc",
		"--grant-type", "client_credentials", "--scope", "introspect credits:charge")
	if err != nil {
		t.Fatal(err)
	}
	var created struct{ ClientID, ClientSecret string }
	var raw map[string]any
	if err := json.Unmarshal([]byte(out), &raw); err != nil {
		t.Fatalf("not JSON: %q", out)
	}
	created.ClientID, _ = raw["client_id"].(string)
	created.ClientSecret, _ = raw["client_secret"].(string)
	if created.ClientID == "" || len(created.ClientSecret) < 43 { // ≥256 bits base64url
		t.Fatalf("client create output %v: want client_id and a ≥256-bit secret", raw)
	}
	out, err = runCLI(t, env, "", "client", "get", "--output", "json", created.ClientID)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out, created.ClientSecret) || strings.Contains(out, `"client_secret":`) {
		t.Fatalf("client get shows the secret: %s", out)
	}
	if _, err := runCLI(t, env, "", "client", "delete", created.ClientID); err != nil {
		t.Fatal(err)
	}
	if _, err := runCLI(t, env, "", "client", "get", created.ClientID); err == nil {
		t.Fatal("deleted client still found")
	}
}

func TestCLI_UserCreateAndRoles(t *testing.T) {
	db := storagetest.NewDB(t)
	env := map[string]string{"AUTHD_DATABASE_URL": db.URL, "AUTHD_BCRYPT_COST": "4"}
	out, err := runCLI(t, env, "s3cret-passw0rd\n", "user", "create", "--output", "json", "--email", "Ops@Example.com",
		"--password-stdin", "--role", "admin", "--verified")
	if err != nil {
		t.Fatal(err)
	}
	var u struct {
		ID    string   `json:"id"`
		Email string   `json:"email"`
		Roles []string `json:"roles"`
	}
	if err := json.Unmarshal([]byte(out), &u); err != nil || u.ID == "" || u.Email != "ops@example.com" {
		t.Fatalf("user create output %q (%v)", out, err)
	}
	if strings.Contains(out, "s3cret") {
		t.Fatal("password echoed")
	}
	if _, err := runCLI(t, env, "", "user", "role", "add", "ops@example.com", "no-such-role"); err == nil {
		t.Fatal("unknown role accepted")
	}
	out, err = runCLI(t, env, "", "user", "role", "remove", "--output", "json", u.ID, "admin")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out, `"admin"`) {
		t.Fatalf("role not removed: %s", out)
	}
	if _, err := runCLI(t, env, "", "user", "create", "--email", "x@example.com"); err == nil {
		t.Fatal("user create without a password accepted")
	}
}

func TestCLI_LedgerVerifyFailsOnTamper(t *testing.T) {
	db := storagetest.NewDB(t)
	env := map[string]string{"AUTHD_DATABASE_URL": db.URL, "AUTHD_BCRYPT_COST": "4"}
	if _, err := runCLI(t, env, "", "ledger", "verify"); err != nil {
		t.Fatalf("empty ledger: %v", err)
	}
	// A balance that no entry explains: verify must exit non-zero.
	ctx := context.Background()
	if _, err := runCLI(t, env, "pw-123456789\n", "user", "create", "--email", "a@example.com", "--password-stdin"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Pool.Exec(ctx, `UPDATE ledger_accounts SET balance = balance + 5 WHERE user_id IS NOT NULL`); err != nil {
		t.Fatalf("tamper: %v", err)
	}
	_, err := runCLI(t, env, "", "ledger", "verify")
	if !errors.Is(err, errLedgerBroken) {
		t.Fatalf("verify after tamper: %v, want errLedgerBroken", err)
	}
}

func TestCLI_KeysListAndRotate(t *testing.T) {
	db := storagetest.NewDB(t)
	env := map[string]string{"AUTHD_DATABASE_URL": db.URL, "AUTHD_SECRETS_KEY": "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="}
	ts := startServer(t, db.URL, nil, nil) // creates the first keys
	_ = ts
	out, err := runCLI(t, env, "", "keys", "list", "--output", "json")
	if err != nil {
		t.Fatal(err)
	}
	var before []struct{ KID, State string }
	if err := json.Unmarshal([]byte(out), &before); err != nil || len(before) == 0 {
		t.Fatalf("keys list: %q %v", out, err)
	}
	if _, err := runCLI(t, env, "", "keys", "rotate"); err != nil {
		t.Fatal(err)
	}
	out, _ = runCLI(t, env, "", "keys", "list", "--output", "json")
	if out == "" || !strings.Contains(out, "retired") && !strings.Contains(out, "active") {
		t.Fatalf("after rotate: %s", out)
	}
	// A wrong secrets key must fail clearly rather than mint keys nobody can read.
	_, err = runCLI(t, map[string]string{"AUTHD_SECRETS_KEY": "YWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXoxMjM0NTY="}, "", "keys", "rotate")
	if err == nil || !strings.Contains(err.Error(), "AUTHD_SECRETS_KEY") {
		t.Fatalf("wrong secrets key: %v", err)
	}
}
