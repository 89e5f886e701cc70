package loginui

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"

	"github.com/gorilla/mux"

	"github.com/authd/authd/accounts"
	"github.com/authd/authd/internal/audit"
	"github.com/authd/authd/storage"
)

// AdminRolesData is the data of templates/admin_roles.html.
type AdminRolesData struct {
	ConsoleNav
	Roles             []accounts.Role
	Name, Description string // the create form, kept after an error
}

func (c *Console) roles(w http.ResponseWriter, r *http.Request, _ consoleReq) {
	note := map[string]string{"created": "The role was created.", "deleted": "The role was deleted."}[r.URL.Query().Get("done")]
	c.renderRoles(w, r, http.StatusOK, note, "", AdminRolesData{})
}

func (c *Console) renderRoles(w http.ResponseWriter, r *http.Request, status int, note, errMsg string, d AdminRolesData) {
	roles, err := c.Accounts.ListRoles(r.Context())
	if err != nil {
		c.fail(w, r, "admin console: roles", err)
		return
	}
	d.ConsoleNav, d.Roles = ConsoleNav{"roles"}, roles
	c.UI.Render(w, r, status, "admin_roles", Page{Title: "Roles", LoggedIn: true, Notice: note, Error: errMsg, Data: d})
}

// roleMessage is the message of a role error the admin can act on.
func roleMessage(err error) (string, int) {
	switch {
	case errors.Is(err, accounts.ErrInvalidRole):
		return "A role name starts with a lowercase letter and has at most 64 lowercase letters, digits and . _ : - ; a description has at most 500 bytes.", http.StatusBadRequest
	case errors.Is(err, accounts.ErrRoleExists):
		return "A role with this name already exists.", http.StatusConflict
	case errors.Is(err, accounts.ErrRoleInUse):
		return "This role is still assigned to users. Remove it from them first (the Users count links to them).", http.StatusConflict
	case errors.Is(err, accounts.ErrRoleBuiltin):
		return "Built-in roles cannot be deleted.", http.StatusConflict
	case errors.Is(err, accounts.ErrUnknownRole):
		return "There is no such role.", http.StatusNotFound
	}
	return "", 0
}

func (c *Console) createRole(w http.ResponseWriter, r *http.Request, a consoleReq) {
	d := AdminRolesData{Name: r.PostFormValue("name"), Description: r.PostFormValue("description")}
	_, err := c.Accounts.CreateRole(r.Context(), a.origin(r), d.Name, d.Description)
	if msg, status := roleMessage(err); msg != "" {
		c.renderRoles(w, r, status, "", msg, d)
		return
	} else if err != nil {
		c.fail(w, r, "admin console: create role", err)
		return
	}
	http.Redirect(w, r, "/admin/roles?done=created", http.StatusSeeOther)
}

func (c *Console) deleteRole(w http.ResponseWriter, r *http.Request, a consoleReq) {
	err := c.Accounts.DeleteRole(r.Context(), a.origin(r), mux.Vars(r)["name"])
	if msg, status := roleMessage(err); msg != "" {
		c.renderRoles(w, r, status, "", msg, AdminRolesData{})
		return
	} else if err != nil {
		c.fail(w, r, "admin console: delete role", err)
		return
	}
	http.Redirect(w, r, "/admin/roles?done=deleted", http.StatusSeeOther)
}

// AdminAuditData is the data of templates/admin_audit.html.
type AdminAuditData struct {
	ConsoleNav
	Actor, Type, Target string
	Events              []AuditRow
	Next, First         string
}

// AuditRow is one audit event with its details as compact JSON text.
type AuditRow struct {
	accounts.AuditEvent
	DetailsText string
}

func (c *Console) audit(w http.ResponseWriter, r *http.Request, _ consoleReq) {
	q := r.URL.Query()
	d := AdminAuditData{ConsoleNav: ConsoleNav{"audit"}, Actor: q.Get("actor"), Type: q.Get("type"), Target: q.Get("target")}
	f := accounts.AuditFilter{ActorID: d.Actor, Type: d.Type, TargetID: d.Target, Cursor: q.Get("cursor"), Limit: 50}
	page, err := c.Accounts.ListAudit(r.Context(), f)
	status, msg := http.StatusOK, ""
	if errors.Is(err, accounts.ErrBadCursor) {
		status, msg = http.StatusBadRequest, "That page link is not valid any more; showing the newest events."
		f.Cursor = ""
		page, err = c.Accounts.ListAudit(r.Context(), f)
	}
	if err != nil {
		c.fail(w, r, "admin console: audit", err)
		return
	}
	for _, e := range page.Items {
		row := AuditRow{AuditEvent: e}
		if len(e.Details) > 2 {
			var v any
			if json.Unmarshal(e.Details, &v) == nil {
				b, _ := json.Marshal(v)
				row.DetailsText = string(b)
			}
		}
		d.Events = append(d.Events, row)
	}
	base := url.Values{}
	for k, v := range map[string]string{"actor": d.Actor, "type": d.Type, "target": d.Target} {
		if v != "" {
			base.Set(k, v)
		}
	}
	if f.Cursor != "" {
		d.First = "/admin/audit?" + base.Encode()
	}
	if page.NextCursor != nil {
		base.Set("cursor", *page.NextCursor)
		d.Next = "/admin/audit?" + base.Encode()
	}
	c.UI.Render(w, r, status, "admin_audit", Page{Title: "Audit log", LoggedIn: true, Error: msg, Data: d})
}

// AdminKeysData is the data of templates/admin_keys.html.
type AdminKeysData struct {
	ConsoleNav
	Keys any
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
