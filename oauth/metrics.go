package oauth

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the provider's Prometheus series, registered on the
// Registerer given to New (none when it is nil).
type metrics struct {
	tokens    *prometheus.CounterVec // by grant_type and result
	authorize *prometheus.CounterVec // by result
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		tokens: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "authd_oauth_token_requests_total",
			Help: "Token endpoint requests by grant type and result (ok, replayed, or the OAuth error code).",
		}, []string{"grant_type", "result"}),
		authorize: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "authd_oauth_authorize_requests_total",
			Help: "Authorization endpoint outcomes (code, login, consent, or the OAuth error code).",
		}, []string{"result"}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.tokens, m.authorize} {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				return nil, err
			}
		}
	}
	return m, nil
}

// knownGrants bounds the grant_type label's cardinality.
func grantLabel(g string) string {
	switch g {
	case "authorization_code", "refresh_token", "client_credentials", "password":
		return g
	}
	return "other"
}
