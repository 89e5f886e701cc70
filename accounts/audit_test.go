package accounts_test

import (
	"context"
	"strings"
	"testing"

	"github.com/authd/authd/accounts"
	"github.com/authd/authd/internal/reqctx"
)

// Registration, verification, reset and password change each write exactly
// one audit event with the user as actor and target, carrying the request's
// id, IP and user agent, and no secret.
func TestService_SelfServiceActionsAreAudited(t *testing.T) {
	s, pool := MustServiceCfg(t, accounts.Config{})
	ctx := reqctx.WithRequestID(context.Background(), "req-audit-1")
	ctx = reqctx.WithClient(ctx, reqctx.Client{IP: "192.0.2.7", UserAgent: "test-agent"})
	const pw, pw2 = "correct horse battery", "another long passphrase"
	u, err := s.Register(ctx, accounts.Registration{Email: "audit@example.com", Password: pw, Name: "A"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.ChangePassword(ctx, u.ID, accounts.Proof{Password: pw}, pw2); err != nil {
		t.Fatal(err)
	}
	rows, err := pool.Query(ctx, `SELECT type, actor_type, actor_id, target_id, request_id, ip, user_agent, details::text
		FROM audit_events WHERE target_id = $1 ORDER BY id`, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var types []string
	for rows.Next() {
		var typ, actorType, actorID, target, reqID, ip, ua, details string
		if err := rows.Scan(&typ, &actorType, &actorID, &target, &reqID, &ip, &ua, &details); err != nil {
			t.Fatal(err)
		}
		types = append(types, typ)
		if actorType != "user" || actorID != u.ID || reqID != "req-audit-1" || ip != "192.0.2.7" || ua != "test-agent" {
			t.Errorf("%s: actor %s/%s request %q ip %q ua %q", typ, actorType, actorID, reqID, ip, ua)
		}
		if strings.Contains(details, pw) || strings.Contains(details, pw2) {
			t.Errorf("%s: a password reached the audit log", typ)
		}
	}
	if got := strings.Join(types, ","); got != "user.registered,user.password_changed" {
		t.Fatalf("audit events %q, want user.registered,user.password_changed", got)
	}
}
