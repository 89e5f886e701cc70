package clientip_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"go.uber.org/zap"

	"github.com/authd/authd/internal/clientip"
	"github.com/authd/authd/internal/reqctx"
)

func mustResolver(t testing.TB, h clientip.Header, cidrs ...string) clientip.Resolver {
	t.Helper()
	p, err := clientip.ParsePrefixes(cidrs)
	if err != nil {
		t.Fatal(err)
	}
	return clientip.NewResolver(p, h)
}

func request(peer string, header string, values ...string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/oauth2/token", nil)
	r.RemoteAddr = peer
	for _, v := range values {
		r.Header.Add(header, v)
	}
	return r
}

func TestResolver_Addr(t *testing.T) {
	xff := mustResolver(t, clientip.XForwardedFor, "10.0.0.0/8", "::1")
	fwd := mustResolver(t, clientip.Forwarded, "10.0.0.0/8")
	for _, tc := range []struct {
		name   string
		res    clientip.Resolver
		peer   string
		header string
		values []string
		want   string
	}{
		// Attacks first: a header nobody trusted wrote changes nothing.
		{"SpoofFromUntrustedPeerIgnored", xff, "198.51.100.9:4000", "X-Forwarded-For", []string{"203.0.113.1"}, "198.51.100.9"},
		{"NoTrustedProxiesIgnoresHeader", clientip.Resolver{}, "10.0.0.1:4000", "X-Forwarded-For", []string{"203.0.113.1"}, "10.0.0.1"},
		{"ClientPrependedHopsIgnored", xff, "10.0.0.1:4000", "X-Forwarded-For", []string{"6.6.6.6, 203.0.113.1"}, "203.0.113.1"},
		{"ClientHeaderLineBeforeProxyLine", xff, "10.0.0.1:4000", "X-Forwarded-For", []string{"6.6.6.6", "203.0.113.1"}, "203.0.113.1"},
		{"OtherHeaderThanConfiguredIgnored", fwd, "10.0.0.1:4000", "X-Forwarded-For", []string{"203.0.113.1"}, "10.0.0.1"},
		{"GarbageHopStopsAtNearestTrusted", xff, "10.0.0.1:4000", "X-Forwarded-For", []string{"203.0.113.1, nonsense"}, "10.0.0.1"},
		{"GarbageBeyondTrustedChain", xff, "10.0.0.1:4000", "X-Forwarded-For", []string{"nonsense, 10.0.0.2"}, "10.0.0.2"},
		// Proxies as deployed.
		{"OneProxy", xff, "10.0.0.1:4000", "X-Forwarded-For", []string{"203.0.113.1"}, "203.0.113.1"},
		{"TwoProxies", xff, "10.0.0.1:4000", "X-Forwarded-For", []string{"203.0.113.1, 10.0.0.2"}, "203.0.113.1"},
		{"EveryHopTrusted", xff, "10.0.0.1:4000", "X-Forwarded-For", []string{"10.0.0.3, 10.0.0.2"}, "10.0.0.3"},
		{"NoHeaderFromProxy", xff, "10.0.0.1:4000", "", nil, "10.0.0.1"},
		{"HopWithPort", xff, "10.0.0.1:4000", "X-Forwarded-For", []string{"203.0.113.1:5555"}, "203.0.113.1"},
		{"IPv6Hop", xff, "[::1]:4000", "X-Forwarded-For", []string{" 2001:db8::7 "}, "2001:db8::7"},
		{"IPv4MappedPeerTrusted", xff, "[::ffff:10.0.0.1]:4000", "X-Forwarded-For", []string{"203.0.113.1"}, "203.0.113.1"},
		{"Forwarded", fwd, "10.0.0.1:4000", "Forwarded", []string{`for=192.0.2.60;proto=http, for="[2001:db8:cafe::17]:4711";by=10.0.0.1`}, "2001:db8:cafe::17"},
		{"ForwardedUnknown", fwd, "10.0.0.1:4000", "Forwarded", []string{`for=unknown`}, "10.0.0.1"},
		{"PeerWithoutPort", clientip.Resolver{}, "192.0.2.1", "", nil, "192.0.2.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.res.Addr(request(tc.peer, tc.header, tc.values...)); got != tc.want {
				t.Fatalf("Addr = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestResolver_AddrAllocatesNothing(t *testing.T) {
	res := mustResolver(t, clientip.XForwardedFor, "10.0.0.0/8")
	r := request("10.0.0.1:4000", "X-Forwarded-For", "6.6.6.6, 203.0.113.1, 10.0.0.2")
	if n := testing.AllocsPerRun(100, func() { _ = res.Addr(r) }); n != 0 {
		t.Fatalf("Addr allocates %.0f times per call", n)
	}
}

func TestKey_IPv6ByPrefix64(t *testing.T) {
	a, b := clientip.Key("2001:db8:1:2::1"), clientip.Key("2001:db8:1:2:ffff::9")
	if a != b || a != "2001:db8:1:2::/64" {
		t.Fatalf("one /64 gave keys %q and %q", a, b)
	}
	if clientip.Key("2001:db8:1:3::1") == a {
		t.Fatal("another /64 shares the key")
	}
	if k := clientip.Key("203.0.113.1"); k != "203.0.113.1" {
		t.Fatalf("IPv4 key %q", k)
	}
	if k := clientip.Key("::ffff:203.0.113.1"); k != "203.0.113.1" {
		t.Fatalf("IPv4-mapped key %q", k)
	}
}

func TestOf_UsesTheResolvedAddress(t *testing.T) {
	r := request("10.0.0.1:4000", "X-Forwarded-For", "203.0.113.1")
	if got := clientip.Of(r); got != "10.0.0.1" {
		t.Fatalf("outside the middleware: %q, want the peer", got)
	}
	ctx := reqctx.WithRequest(context.Background(), "id", zap.NewNop(), reqctx.Client{IP: "203.0.113.1"})
	if got := clientip.Of(r.WithContext(ctx)); got != "203.0.113.1" {
		t.Fatalf("inside the middleware: %q", got)
	}
}

func TestParsePrefixes(t *testing.T) {
	p, err := clientip.ParsePrefixes([]string{"10.0.0.0/8", " 192.0.2.7 ", "2001:db8::/32", ""})
	if err != nil || len(p) != 3 || p[1].String() != "192.0.2.7/32" {
		t.Fatalf("got %v, %v", p, err)
	}
	for _, bad := range []string{"10.0.0.1/8", "example.com", "10.0.0.0/33"} {
		if _, err := clientip.ParsePrefixes([]string{bad}); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
