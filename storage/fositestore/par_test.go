package fositestore_test

import (
	"context"
	"errors"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/ory/fosite"

	"github.com/authd/authd/storage/fositestore"
	"github.com/authd/authd/storage/fositetest"
	"github.com/authd/authd/storage/storagetest"
)

func pushedRequest(client fosite.Client, now time.Time) *fosite.AuthorizeRequest {
	ar := fosite.NewAuthorizeRequest()
	ar.ID = "family-1"
	ar.RequestedAt = now
	ar.Client = client
	ar.Form = url.Values{"scope": {"openid"}, "code_challenge": {"abc"}, "state": {"s1"}}
	ar.RequestedScope = fosite.Arguments{"openid"}
	ar.ResponseTypes = fosite.Arguments{"code"}
	ar.State = "s1"
	ar.RedirectURI, _ = url.Parse("https://app.example/cb")
	ar.SetDefaultResponseMode(fosite.ResponseModeQuery)
	sess := fositetest.NewSession("", now)
	sess.SetExpiresAt(fosite.PushedAuthorizeRequestContext, now.Add(time.Minute))
	ar.Session = sess
	return ar
}

// A pushed request comes back whole (its request id above all: it names
// the token family the code starts), keyed by a hash of the request_uri,
// survives fosite's DeletePARSession (the browser may return after login),
// and is consumed once.
func TestStore_PARSession(t *testing.T) {
	db := storagetest.NewDB(t)
	now := time.Now().UTC().Truncate(time.Microsecond)
	clock := now
	st := fositestore.New(db.Pool, fositestore.Options{Now: func() time.Time { return clock }})
	ctx := context.Background()
	client := fositetest.MustCreateClient(t, st, "client")
	const uri = "urn:ietf:params:oauth:request_uri:abc"
	if err := st.CreatePARSession(ctx, uri, pushedRequest(client, now)); err != nil {
		t.Fatal(err)
	}
	var raw int
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM oauth2_par WHERE signature = $1`, uri).Scan(&raw); err != nil || raw != 0 {
		t.Fatalf("row keyed by the raw request_uri: %d %v", raw, err)
	}
	got, err := st.GetPARSession(ctx, uri)
	if err != nil {
		t.Fatal(err)
	}
	ar := got.(*fosite.AuthorizeRequest)
	if ar.ID != "family-1" || !ar.RequestedAt.Equal(now) || ar.Client.GetID() != client.GetID() || ar.State != "s1" ||
		ar.RedirectURI.String() != "https://app.example/cb" || !ar.RequestedScope.Has("openid") ||
		!ar.ResponseTypes.ExactOne("code") || ar.ResponseMode != fosite.ResponseModeQuery || ar.Form.Get("code_challenge") != "abc" {
		t.Fatalf("round trip: %+v", ar)
	}
	if err := st.DeletePARSession(ctx, uri); err != nil {
		t.Fatal(err)
	}
	if _, err := st.GetPARSession(ctx, uri); err != nil {
		t.Fatalf("after fosite's delete: %v", err)
	}

	var wg sync.WaitGroup
	var mu sync.Mutex
	wins := 0
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := st.ConsumePARSession(ctx, uri)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				wins++
			case !errors.Is(err, fositestore.ErrPARUsed):
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if wins != 1 {
		t.Fatalf("%d consumers won, want 1", wins)
	}
	if _, err := st.GetPARSession(ctx, uri); !errors.Is(err, fosite.ErrNotFound) {
		t.Fatalf("after use: %v, want not found", err)
	}
}

func TestStore_PARSessionExpires(t *testing.T) {
	db := storagetest.NewDB(t)
	now := time.Now().UTC()
	clock := now
	st := fositestore.New(db.Pool, fositestore.Options{Now: func() time.Time { return clock }})
	ctx := context.Background()
	client := fositetest.MustCreateClient(t, st, "client")
	const uri = "urn:ietf:params:oauth:request_uri:exp"
	if err := st.CreatePARSession(ctx, uri, pushedRequest(client, now)); err != nil {
		t.Fatal(err)
	}
	clock = now.Add(time.Minute + time.Second)
	if _, err := st.GetPARSession(ctx, uri); !errors.Is(err, fosite.ErrNotFound) {
		t.Fatalf("expired: %v, want not found", err)
	}
	if err := st.ConsumePARSession(ctx, uri); !errors.Is(err, fositestore.ErrPARUsed) {
		t.Fatalf("consume expired: %v", err)
	}
	n, err := st.DeleteExpired(ctx, clock)
	if err != nil || n != 1 {
		t.Fatalf("DeleteExpired: %d %v, want the PAR row", n, err)
	}
}
