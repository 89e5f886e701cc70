package loginui

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"time"

	"github.com/authd/authd/accounts"
)

// AdminAuditData is the data of templates/admin_audit.html.
type AdminAuditData struct {
	ConsoleNav
	Actor, Type, Target string
	// From and To are UTC days (YYYY-MM-DD), both included.
	From, To    string
	Events      []AuditRow
	Next, First string
}

// AuditRow is one audit event with its details as compact JSON text.
type AuditRow struct {
	accounts.AuditEvent
	DetailsText string
}

// pageLinks are a console listing's links to its first page (when this one,
// at cursor, is not it) and to its next page (when next is set), keeping the
// filters that are not empty.
func pageLinks(path string, filters map[string]string, cursor string, next *string) (first, nextURL string) {
	base := url.Values{}
	for k, v := range filters {
		if v != "" {
			base.Set(k, v)
		}
	}
	if cursor != "" {
		first = path + "?" + base.Encode()
	}
	if next != nil {
		base.Set("cursor", *next)
		nextURL = path + "?" + base.Encode()
	}
	return first, nextURL
}

func (c *Console) audit(w http.ResponseWriter, r *http.Request, _ consoleReq) {
	q := r.URL.Query()
	d := AdminAuditData{ConsoleNav: ConsoleNav{"audit"}, Actor: q.Get("actor"), Type: q.Get("type"), Target: q.Get("target"),
		From: q.Get("from"), To: q.Get("to")}
	f := accounts.AuditFilter{ActorID: d.Actor, Type: d.Type, TargetID: d.Target, Cursor: q.Get("cursor"), Limit: 50}
	status, msg := http.StatusOK, ""
	if day, err := time.Parse(time.DateOnly, d.From); d.From != "" && err == nil {
		f.Since = day
	} else if d.From != "" {
		status, msg, d.From = http.StatusBadRequest, "Dates are written YYYY-MM-DD.", ""
	}
	if day, err := time.Parse(time.DateOnly, d.To); d.To != "" && err == nil {
		f.Until = day.AddDate(0, 0, 1) // the whole day
	} else if d.To != "" {
		status, msg, d.To = http.StatusBadRequest, "Dates are written YYYY-MM-DD.", ""
	}
	page, err := c.Accounts.ListAudit(r.Context(), f)
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
	d.First, d.Next = pageLinks("/admin/audit", map[string]string{"actor": d.Actor, "type": d.Type, "target": d.Target, "from": d.From, "to": d.To},
		f.Cursor, page.NextCursor)
	c.UI.Render(w, r, status, "admin_audit", Page{Title: "Audit log", LoggedIn: true, Error: msg, Data: d})
}
