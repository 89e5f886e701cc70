package docs_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	josev4 "github.com/go-jose/go-jose/v4"
)

// assertionMain calls the guide's Token with the key in a PEM file and
// prints the access token it gets.
const assertionMain = `package main

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
)

func main() {
	raw, err := os.ReadFile(os.Args[3])
	if err != nil {
		panic(err)
	}
	block, _ := pem.Decode(raw)
	key, err := x509.ParseECPrivateKey(block.Bytes)
	if err != nil {
		panic(err)
	}
	tok, err := Token(context.Background(), os.Args[1], os.Args[2], key)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Print(tok.AccessToken)
}
`

// TestDocs_GoClientAssertionRuns runs the integration guide's Go
// private_key_jwt client (the block declaring package backend) as written,
// against the real authd binary and a client registered with the CLI: the
// example is compiled inside this module, so it builds against the same
// go-jose and x/oauth2 versions.
func TestDocs_GoClientAssertionRuns(t *testing.T) {
	var example string
	for _, b := range blocks(t, "integrating-an-app.md") {
		if b.lang == "go" && strings.HasPrefix(b.text, "package backend\n") {
			example = b.text
		}
	}
	if example == "" {
		t.Fatal("integrating-an-app.md has no Go block declaring package backend")
	}
	a := startAuthd(t)

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	keyDir := t.TempDir()
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(keyDir, "backend-key.pem")
	jwksFile := filepath.Join(keyDir, "backend-jwks.json")
	jwks, _ := json.Marshal(josev4.JSONWebKeySet{Keys: []josev4.JSONWebKey{{Key: key.Public(), KeyID: "backend-1", Use: "sig"}}})
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(jwksFile, jwks, 0o600); err != nil {
		t.Fatal(err)
	}
	client := a.CLI("", "client", "create", "--name", "Backend", "--grant-type", "client_credentials",
		"--scope", "introspect", "--jwks", jwksFile)
	clientID, _ := client["client_id"].(string)

	// Inside the module (so its go.mod resolves the imports); the leading
	// underscore keeps ./... from ever seeing it.
	dir, err := os.MkdirTemp(".", "_goexample-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	// The one change: the guide's package becomes a command.
	src := strings.Replace(example, "package backend\n", "package main\n", 1)
	if err := os.WriteFile(filepath.Join(dir, "backend.go"), []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(assertionMain), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "run", ".", a.URL+"/oauth2/token", clientID, keyFile)
	cmd.Dir = dir
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("the guide's Go client: %v\n%s", err, stderr.String())
	}
	if parts := strings.Split(string(out), "."); len(parts) != 3 {
		t.Fatalf("the guide's Go client got no JWT access token: %q", out)
	}
}
