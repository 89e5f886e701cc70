package main

import "github.com/gorilla/mux"

// mountDemo serves the demo relying party at /demo once internal/demo lands.
func mountDemo(r *mux.Router, rt *runtime, creds *devCredentials) error { return nil }
