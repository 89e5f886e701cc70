package passkey_test

import (
	"errors"
	"testing"

	"github.com/authd/authd/accounts/passkey"
)

func TestRelyingParty_FromIssuer(t *testing.T) {
	for _, tc := range []struct {
		name, issuer, rpID, origin string
		err                        error
	}{
		{name: "OK_Https", issuer: "https://login.example.com", rpID: "login.example.com", origin: "https://login.example.com"},
		{name: "OK_PortAndPath", issuer: "https://Login.Example.com:8443/authd", rpID: "login.example.com", origin: "https://login.example.com:8443"},
		{name: "OK_Localhost", issuer: "http://localhost:8080", rpID: "localhost", origin: "http://localhost:8080"},
		{name: "ErrUnavailable_IPv4", issuer: "http://127.0.0.1:8080", err: passkey.ErrUnavailable},
		{name: "ErrUnavailable_IPv6", issuer: "http://[::1]:8080", err: passkey.ErrUnavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rpID, origin, err := passkey.RelyingParty(tc.issuer)
			if !errors.Is(err, tc.err) || rpID != tc.rpID || origin != tc.origin {
				t.Fatalf("RelyingParty(%q) = %q, %q, %v", tc.issuer, rpID, origin, err)
			}
		})
	}
	if _, _, err := passkey.RelyingParty("not a url"); err == nil {
		t.Fatal("a non-URL issuer was accepted")
	}
}

func TestResult_AMR(t *testing.T) {
	for _, tc := range []struct {
		name     string
		verified bool
		password bool
		want     string
	}{
		{"PasswordAndPasskey", false, true, "pwd hwk mfa"},
		{"PasswordlessVerified", true, false, "hwk mfa"},
		{"PasswordlessUnverified", false, false, "hwk"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &passkey.Result{UserVerified: tc.verified}
			got := ""
			for i, m := range r.AMR(tc.password) {
				if i > 0 {
					got += " "
				}
				got += m
			}
			if got != tc.want {
				t.Fatalf("amr = %q, want %q", got, tc.want)
			}
		})
	}
}
