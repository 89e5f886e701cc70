package loginui

import (
	"context"
	"net/http"

	"github.com/authd/authd/internal/audit"
	"github.com/authd/authd/oauth/keys"
	"github.com/authd/authd/storage"
)

// AdminKeysData is the data of templates/admin_keys.html.
type AdminKeysData struct {
	ConsoleNav
	Keys []keys.KeyInfo
}

func (c *Console) keys(w http.ResponseWriter, r *http.Request, _ consoleReq) {
	note := map[string]string{"rotated": "The keys were rotated: the pre-published next key takes over (at once, or as soon as every cache can know it) and a new next key is published."}[r.URL.Query().Get("done")]
	c.renderKeys(w, r, http.StatusOK, note, "")
}

func (c *Console) renderKeys(w http.ResponseWriter, r *http.Request, status int, note, errMsg string) {
	ks, err := c.Keys.List(r.Context())
	if err != nil {
		c.fail(w, r, "admin console: keys", err)
		return
	}
	c.UI.Render(w, r, status, "admin_keys", Page{Title: "Signing keys", LoggedIn: true, Notice: note, Error: errMsg,
		Data: AdminKeysData{ConsoleNav: ConsoleNav{"keys"}, Keys: ks}})
}

func (c *Console) rotateKeys(w http.ResponseWriter, r *http.Request, a consoleReq) {
	msg, status, err := c.confirm(r.Context(), r, a)
	if err != nil {
		c.fail(w, r, "admin console: confirm", err)
		return
	}
	if msg != "" {
		c.renderKeys(w, r, status, "", "Rotating keys: "+msg)
		return
	}
	origin := a.origin(r)
	// The audit event commits in the rotation's own transaction, as the
	// admin API's does.
	err = c.Keys.RotateAndRecord(r.Context(), func(ctx context.Context, q storage.Querier, activating []string) error {
		e := origin
		e.Type, e.TargetType, e.Details = "keys.rotated", "signing_keys", map[string]any{"activating": activating}
		return audit.Record(ctx, q, c.Log, e)
	})
	if err != nil {
		c.fail(w, r, "admin console: rotate keys", err)
		return
	}
	http.Redirect(w, r, "/admin/keys?done=rotated", http.StatusSeeOther)
}
