package reliability

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"
)

// Fixture is what the load needs: a service client (client_credentials,
// scopes credits:charge and introspect), a first-party app (password and
// refresh_token grants) and users with credits.
type Fixture struct {
	Key                    string // AUTHD_SECRETS_KEY every server of the scenario shares
	SvcID, SvcSecret       string
	AppID, AppSecret       string
	Users                  []User
	ServiceScope, AppScope string
}

// User is a test user with known credentials.
type User struct{ ID, Email, Password string }

type clientOut struct {
	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret"`
}

// NewFixture creates the clients and n users through the authd CLI and,
// when credits > 0, grants each user that many credits through base.
func NewFixture(ctx context.Context, env Env, key, base string, n int, credits int64) (*Fixture, error) {
	f := &Fixture{Key: key, ServiceScope: "credits:charge credits:grant introspect", AppScope: "offline_access credits:read credits:spend"}
	var svc, app clientOut
	out, err := env.CLI(ctx, key, "", "client", "create", "--output", "json", "--name", "reliability service",
		"--grant-type", "client_credentials", "--scope", f.ServiceScope)
	if err == nil {
		err = json.Unmarshal(out, &svc)
	}
	if err != nil {
		return nil, fmt.Errorf("create service client: %w", err)
	}
	out, err = env.CLI(ctx, key, "", "client", "create", "--output", "json", "--name", "reliability app", "--first-party",
		"--grant-type", "password", "--grant-type", "refresh_token", "--scope", f.AppScope)
	if err == nil {
		err = json.Unmarshal(out, &app)
	}
	if err != nil {
		return nil, fmt.Errorf("create first-party client: %w", err)
	}
	f.SvcID, f.SvcSecret, f.AppID, f.AppSecret = svc.ClientID, svc.ClientSecret, app.ClientID, app.ClientSecret
	for i := range n {
		u := User{Email: fmt.Sprintf("rel-%d-%s@example.test", i, RandomID()), Password: "reliable " + RandomID()}
		out, err := env.CLI(ctx, key, u.Password+"\n", "user", "create", "--output", "json", "--email", u.Email, "--password-stdin", "--verified")
		var j struct {
			ID string `json:"id"`
		}
		if err == nil {
			err = json.Unmarshal(out, &j)
		}
		if err != nil {
			return nil, fmt.Errorf("create user: %w", err)
		}
		u.ID = j.ID
		f.Users = append(f.Users, u)
	}
	if credits > 0 {
		c := NewClient(10*time.Second, false)
		tok, a := ClientCredentials(ctx, c, base, f.SvcID, f.SvcSecret, "credits:grant")
		if !a.OK() {
			return nil, fmt.Errorf("service token: %s", a)
		}
		for _, u := range f.Users {
			if a := Grant(ctx, c, base, tok.AccessToken, u.ID, "seed-"+RandomID(), credits); !a.OK() {
				return nil, fmt.Errorf("grant credits: %s", a)
			}
		}
	}
	return f, nil
}

// ServiceToken gets a credits:charge token for the service client from base.
func (f *Fixture) ServiceToken(ctx context.Context, c *http.Client, base string) (string, error) {
	tok, a := ClientCredentials(ctx, c, base, f.SvcID, f.SvcSecret, "credits:charge")
	if !a.OK() {
		return "", fmt.Errorf("service token from %s: %s", base, a)
	}
	return tok.AccessToken, nil
}
