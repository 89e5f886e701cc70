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
	// issued counts token responses by grant_type and client_id. The
	// client_id label is bounded: its values come only from clients that
	// exist in the registry (fosite found or authenticated them), and
	// clients are created by administrators, not by callers, so the series
	// count is grant types x registered clients; request input never
	// reaches a label.
	issued        *prometheus.CounterVec
	refreshReuse  prometheus.Counter
	introspection *prometheus.CounterVec // by result
	revocations   *prometheus.CounterVec // by result
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
		issued: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "authd_oauth_tokens_issued_total",
			Help: "Token responses issued (replays of a refresh within the reuse window not counted), by grant type and client.",
		}, []string{"grant_type", "client_id"}),
		refreshReuse: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "authd_oauth_refresh_reuse_detected_total",
			Help: "Refresh tokens presented after rotation (outside the reuse window) or revocation; each revokes its token family.",
		}),
		introspection: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "authd_oauth_introspections_total",
			Help: "Token introspections by result: active, inactive, unauthorized (caller not allowed). Malformed requests and outages are not counted here.",
		}, []string{"result"}),
		revocations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "authd_oauth_revocations_total",
			Help: "Token revocation requests (RFC 7009) by result: ok, or the OAuth error code.",
		}, []string{"result"}),
	}
	for _, r := range []string{"active", "inactive", "unauthorized"} {
		m.introspection.WithLabelValues(r)
	}
	m.revocations.WithLabelValues("ok")
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.tokens, m.authorize, m.issued, m.refreshReuse, m.introspection, m.revocations} {
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
	case DeviceGrantType:
		return "device_code"
	}
	return "other"
}

// tokenIssued counts a token response for client.
func (m *metrics) tokenIssued(grant, clientID string) {
	m.tokens.WithLabelValues(grantLabel(grant), "ok").Inc()
	m.issued.WithLabelValues(grantLabel(grant), clientID).Inc()
}

func (m *metrics) introspected(result string) { m.introspection.WithLabelValues(result).Inc() }

func (m *metrics) revoked(err error) {
	result := "ok"
	if err != nil {
		result = errorCode(err)
	}
	m.revocations.WithLabelValues(result).Inc()
}
