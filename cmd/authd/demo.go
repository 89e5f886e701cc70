package main

import (
	"net/http"
	"time"

	"github.com/gorilla/mux"

	"github.com/authd/authd/internal/demo"
)

// mountDemo serves the demo relying party at /demo: a real OIDC client of
// this very server, talking to it over HTTP like any app would.
func mountDemo(r *mux.Router, rt *runtime, creds *devCredentials) error {
	h := demo.New(rt.cfg.Issuer, creds.DemoClientID, creds.DemoClientSecret, rt.cfg.Issuer+"/demo/callback",
		&http.Client{Timeout: 10 * time.Second})
	r.PathPrefix("/demo").Handler(h)
	return nil
}
