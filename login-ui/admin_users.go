package loginui

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/gorilla/mux"

	"github.com/authd/authd/accounts"
	"github.com/authd/authd/ledger"
)

// ConsoleNav names the console section a page belongs to, for the menu.
type ConsoleNav struct{ Section string }

// AdminUsersData is the data of templates/admin_users.html.
type AdminUsersData struct {
	ConsoleNav
	Query, Role, Status string
	Roles               []accounts.Role
	Users               []*accounts.User
	// Next is the URL of the next page ("" on the last one); First is set
	// when this is not the first page.
	Next, First string
}

func (c *Console) users(w http.ResponseWriter, r *http.Request, _ consoleReq) {
	q := r.URL.Query()
	d := AdminUsersData{ConsoleNav: ConsoleNav{"users"}, Query: q.Get("q"), Role: q.Get("role"), Status: q.Get("status")}
	f := accounts.UserFilter{Query: d.Query, Role: d.Role, Cursor: q.Get("cursor"), Limit: 25}
	switch d.Status {
	case "active", "disabled":
		dis := d.Status == "disabled"
		f.Disabled = &dis
	default:
		d.Status = ""
	}
	roles, err := c.Accounts.ListRoles(r.Context())
	if err != nil {
		c.fail(w, r, "admin console: roles", err)
		return
	}
	d.Roles = roles
	page, err := c.Accounts.ListUsers(r.Context(), f)
	status, msg := http.StatusOK, ""
	switch {
	case errors.Is(err, accounts.ErrBadCursor):
		status, msg = http.StatusBadRequest, "That page link is not valid any more; showing the first page."
		f.Cursor = ""
		page, err = c.Accounts.ListUsers(r.Context(), f)
	}
	if err != nil {
		c.fail(w, r, "admin console: list users", err)
		return
	}
	d.Users = page.Items
	d.First, d.Next = pageLinks("/admin/users", map[string]string{"q": d.Query, "role": d.Role, "status": d.Status}, f.Cursor, page.NextCursor)
	note := map[string]string{
		accounts.OutcomeDeleted:    "The user was deleted.",
		accounts.OutcomeAnonymised: "The user had credit history, so they were anonymised and disabled instead of deleted.",
	}[q.Get("deleted")]
	c.UI.Render(w, r, status, "admin_users", Page{Title: "Users", LoggedIn: true, Error: msg, Notice: note, Data: d})
}

// AdminUserData is the data of templates/admin_user.html.
type AdminUserData struct {
	ConsoleNav
	User      *accounts.User
	Self      bool // the administrator's own account
	Sessions  []SessionView
	Addable   []string // roles the user does not hold
	Balance   int64
	History   ledger.History
	NextTx    string               // URL of the next page of history
	FirstTx   string               // set when this is not the first page
	Threshold int64                // grants above it need a password or recent login
	Spends    []ledger.Transaction // the spends of this history page, for refunds
	Apps      []ConsentedApp       // the apps the user allowed
	Factors   []string             // the second-factor methods the user holds
}

// userNotices are the fixed messages after a change (?done=…); the query
// only selects one, so nothing from the URL is reflected.
func userNotice(done string) string {
	return map[string]string{
		"role_added":   "The role was added. The user's next token refresh carries it.",
		"role_removed": "The role was removed; the user's sessions and tokens were revoked.",
		"session":      "The session was ended.",
		"granted":      "The credits were granted.",
		"refunded":     "The credits were refunded.",
		"replayed":     "A grant with this reference already existed; nothing new was posted.",
		"disabled":     "The user is disabled; their sessions and tokens were revoked.",
		"enabled":      "The user is enabled.",
		"mfa_reset":    "The user's second factors were removed; their sessions and tokens were revoked. They log in with the password alone until they set one up again.",
	}[done]
}

func (c *Console) user(w http.ResponseWriter, r *http.Request, a consoleReq) {
	c.renderUser(w, r, a, http.StatusOK, userNotice(r.URL.Query().Get("done")), "")
}

func (c *Console) renderUser(w http.ResponseWriter, r *http.Request, a consoleReq, status int, note, errMsg string) {
	ctx := r.Context()
	id := mux.Vars(r)["id"]
	u, err := c.Accounts.User(ctx, id)
	if errors.Is(err, accounts.ErrNotFound) {
		c.UI.Render(w, r, http.StatusNotFound, "message", Page{Title: "No such user", LoggedIn: true,
			Data: "There is no user with this id. It may have been deleted."})
		return
	}
	if err != nil {
		c.fail(w, r, "admin console: user", err)
		return
	}
	d := AdminUserData{ConsoleNav: ConsoleNav{"users"}, User: u, Self: u.ID == a.admin.ID, Threshold: c.threshold()}
	sessions, err := c.Accounts.Sessions(ctx, u.ID)
	if err != nil {
		c.fail(w, r, "admin console: sessions", err)
		return
	}
	for _, s := range sessions {
		d.Sessions = append(d.Sessions, SessionView{Session: s, Current: s.ID == a.session.ID, Browser: browserName(s.UserAgent)})
	}
	roles, err := c.Accounts.ListRoles(ctx)
	if err != nil {
		c.fail(w, r, "admin console: roles", err)
		return
	}
	for _, role := range roles {
		if !slices.Contains(u.Roles, role.Name) {
			d.Addable = append(d.Addable, role.Name)
		}
	}
	if d.Factors, err = c.Accounts.Factors(ctx, u.ID); err != nil {
		c.fail(w, r, "admin console: factors", err)
		return
	}
	if c.Apps != nil {
		if d.Apps, err = c.Apps.ConsentedApps(ctx, u.ID); err != nil {
			c.fail(w, r, "admin console: apps", err)
			return
		}
	}
	if d.Balance, err = c.Ledger.Balance(ctx, u.ID); err != nil && !errors.Is(err, ledger.ErrUserNotFound) {
		c.fail(w, r, "admin console: balance", err)
		return
	}
	cursor := r.URL.Query().Get("tx")
	d.History, err = c.Ledger.List(ctx, u.ID, ledger.Page{Cursor: cursor, Limit: 20})
	var ve *ledger.ValidationError
	if errors.As(err, &ve) {
		cursor = ""
		d.History, err = c.Ledger.List(ctx, u.ID, ledger.Page{Limit: 20})
	}
	if err != nil && !errors.Is(err, ledger.ErrUserNotFound) {
		c.fail(w, r, "admin console: history", err)
		return
	}
	for _, t := range d.History.Items {
		if t.Kind == ledger.KindSpend {
			d.Spends = append(d.Spends, t)
		}
	}
	self := "/admin/users/" + url.PathEscape(u.ID)
	if cursor != "" {
		d.FirstTx = self + "#credits"
	}
	if d.History.NextCursor != nil {
		d.NextTx = self + "?" + url.Values{"tx": {*d.History.NextCursor}}.Encode() + "#credits"
	}
	c.UI.Render(w, r, status, "admin_user", Page{Title: u.Email, LoggedIn: true, Notice: note, Error: errMsg, Data: d})
}

func (c *Console) threshold() int64 {
	if c.ConfirmGrantAbove > 0 {
		return c.ConfirmGrantAbove
	}
	return 1000
}

// done redirects to the user's page with a fixed notice (POST/redirect/GET).
func done(w http.ResponseWriter, r *http.Request, userID, what string) {
	http.Redirect(w, r, "/admin/users/"+url.PathEscape(userID)+"?done="+what, http.StatusSeeOther)
}

// userError renders the user page with the message of a domain error the
// admin can act on; it reports false for other errors.
func (c *Console) userError(w http.ResponseWriter, r *http.Request, a consoleReq, err error) bool {
	var msg string
	status := http.StatusBadRequest
	switch {
	case errors.Is(err, accounts.ErrUnknownRole):
		msg = "There is no such role."
	case errors.Is(err, accounts.ErrNoSession):
		status, msg = http.StatusNotFound, "That session has already ended."
	case errors.Is(err, accounts.ErrNotFound), errors.Is(err, ledger.ErrUserNotFound):
		c.UI.Render(w, r, http.StatusNotFound, "message", Page{Title: "No such user", LoggedIn: true,
			Data: "There is no user with this id. It may have been deleted."})
		return true
	default:
		return false
	}
	c.renderUser(w, r, a, status, "", msg)
	return true
}

func (c *Console) addRole(w http.ResponseWriter, r *http.Request, a consoleReq) {
	id := mux.Vars(r)["id"]
	role := r.PostFormValue("role")
	// Making an administrator creates lasting power: a stale session
	// must prove the admin is present.
	if strings.EqualFold(role, AdminRole) {
		msg, status, err := c.confirm(r.Context(), r, a)
		if err != nil {
			c.fail(w, r, "admin console: confirm", err)
			return
		}
		if msg != "" {
			c.renderUser(w, r, a, status, "", "Adding the admin role: "+msg)
			return
		}
	}
	_, err := c.Accounts.AssignRole(r.Context(), a.origin(r), id, role)
	if err != nil {
		if !c.userError(w, r, a, err) {
			c.fail(w, r, "admin console: assign role", err)
		}
		return
	}
	done(w, r, id, "role_added")
}

func (c *Console) removeRole(w http.ResponseWriter, r *http.Request, a consoleReq) {
	id := mux.Vars(r)["id"]
	role := r.PostFormValue("role")
	if a.isSelf(id) && strings.EqualFold(role, AdminRole) {
		c.renderUser(w, r, a, http.StatusConflict, "", "You cannot take the admin role from yourself here: another administrator must do it.")
		return
	}
	_, err := c.Accounts.UnassignRole(r.Context(), a.origin(r), id, role, true)
	if err != nil {
		if !c.userError(w, r, a, err) {
			c.fail(w, r, "admin console: remove role", err)
		}
		return
	}
	done(w, r, id, "role_removed")
}

func (c *Console) endSession(w http.ResponseWriter, r *http.Request, a consoleReq) {
	id := mux.Vars(r)["id"]
	err := c.Accounts.EndUserSession(r.Context(), a.origin(r), id, r.PostFormValue("session_id"))
	if err != nil {
		if !c.userError(w, r, a, err) {
			c.fail(w, r, "admin console: end session", err)
		}
		return
	}
	done(w, r, id, "session")
}

func (c *Console) setDisabled(disabled bool) consoleHandler {
	return func(w http.ResponseWriter, r *http.Request, a consoleReq) {
		id := mux.Vars(r)["id"]
		if a.isSelf(id) && disabled {
			c.renderUser(w, r, a, http.StatusConflict, "", "You cannot disable your own account.")
			return
		}
		_, err := c.Accounts.SetDisabled(r.Context(), a.origin(r), id, disabled, true)
		if err != nil {
			if !c.userError(w, r, a, err) {
				c.fail(w, r, "admin console: set disabled", err)
			}
			return
		}
		what := "enabled"
		if disabled {
			what = "disabled"
		}
		done(w, r, id, what)
	}
}

func (c *Console) grant(w http.ResponseWriter, r *http.Request, a consoleReq) {
	id := mux.Vars(r)["id"]
	amount, err := strconv.ParseInt(strings.TrimSpace(r.PostFormValue("amount")), 10, 64)
	if err != nil || amount < 1 {
		c.renderUser(w, r, a, http.StatusBadRequest, "", "The amount must be a whole number of credits, at least 1.")
		return
	}
	if amount > c.threshold() {
		msg, status, err := c.confirm(r.Context(), r, a)
		if err != nil {
			c.fail(w, r, "admin console: confirm", err)
			return
		}
		if msg != "" {
			c.renderUser(w, r, a, status, "", "Granting more than "+strconv.FormatInt(c.threshold(), 10)+" credits: "+msg)
			return
		}
	}
	res, err := c.Ledger.Grant(r.Context(), c.posting(r, a, id, amount))
	c.posted(w, r, a, id, res, err, "granted")
}

// posting is the ledger posting of a console form, with the admin as actor.
func (c *Console) posting(r *http.Request, a consoleReq, userID string, amount int64) ledger.Posting {
	o := a.origin(r)
	return ledger.Posting{UserID: userID, Amount: amount,
		Reference: r.PostFormValue("reference"), Description: r.PostFormValue("description"),
		Origin: ledger.Origin{Actor: ledger.Actor{Type: ledger.ActorAdmin, ID: a.admin.ID},
			RequestID: o.RequestID, IP: o.IP, UserAgent: o.UserAgent}}
}

// posted answers a grant or refund: the user page with what went wrong, or
// a redirect to it with the notice what (or "replayed").
func (c *Console) posted(w http.ResponseWriter, r *http.Request, a consoleReq, id string, res ledger.Result, err error, what string) {
	var ve *ledger.ValidationError
	var re *ledger.RefundExceedsError
	switch {
	case errors.As(err, &ve):
		c.renderUser(w, r, a, http.StatusBadRequest, "", "The "+strings.ReplaceAll(ve.Field, "_", " ")+" "+ve.Detail+".")
		return
	case errors.As(err, &re):
		c.renderUser(w, r, a, http.StatusConflict, "", "Only "+strconv.FormatInt(re.Remaining, 10)+" credits of this spend are left to refund.")
		return
	case errors.Is(err, ledger.ErrSpendNotFound):
		c.renderUser(w, r, a, http.StatusNotFound, "", "That spend does not exist for this user.")
		return
	case errors.Is(err, ledger.ErrReferenceConflict):
		c.renderUser(w, r, a, http.StatusConflict, "", "This reference was already used for a different posting to this user. Choose another reference.")
		return
	case errors.Is(err, ledger.ErrBalanceOverflow):
		c.renderUser(w, r, a, http.StatusBadRequest, "", "The balance would exceed the largest possible amount.")
		return
	case err != nil:
		if !c.userError(w, r, a, err) {
			c.fail(w, r, "admin console: "+what, err)
		}
		return
	}
	if res.Replayed {
		what = "replayed"
	}
	done(w, r, id, what)
}

func (c *Console) refund(w http.ResponseWriter, r *http.Request, a consoleReq) {
	id := mux.Vars(r)["id"]
	amount, err := strconv.ParseInt(strings.TrimSpace(r.PostFormValue("amount")), 10, 64)
	if err != nil || amount < 1 {
		c.renderUser(w, r, a, http.StatusBadRequest, "", "The amount must be a whole number of credits, at least 1.")
		return
	}
	res, err := c.Ledger.Refund(r.Context(), ledger.RefundPosting{Posting: c.posting(r, a, id, amount), SpendID: r.PostFormValue("spend_id")})
	c.posted(w, r, a, id, res, err, "refunded")
}

func (c *Console) deleteUser(w http.ResponseWriter, r *http.Request, a consoleReq) {
	id := mux.Vars(r)["id"]
	if a.isSelf(id) {
		c.renderUser(w, r, a, http.StatusConflict, "", "You cannot delete your own account from the console.")
		return
	}
	msg, status, err := c.confirm(r.Context(), r, a)
	if err != nil {
		c.fail(w, r, "admin console: confirm", err)
		return
	}
	if msg != "" {
		c.renderUser(w, r, a, status, "", "Deleting a user: "+msg)
		return
	}
	res, err := c.Accounts.DeleteUser(r.Context(), a.origin(r), id)
	if err != nil {
		if !c.userError(w, r, a, err) {
			c.fail(w, r, "admin console: delete user", err)
		}
		return
	}
	http.Redirect(w, r, "/admin/users?"+url.Values{"deleted": {res.Outcome}}.Encode(), http.StatusSeeOther)
}

// resetFactors removes every second factor of a user who lost theirs, as
// the admin API's DELETE /admin/v1/users/{id}/mfa does: whoever holds the
// user's password then logs in with it alone, so the admin must be present.
func (c *Console) resetFactors(w http.ResponseWriter, r *http.Request, a consoleReq) {
	id := mux.Vars(r)["id"]
	msg, status, err := c.confirm(r.Context(), r, a)
	if err != nil {
		c.fail(w, r, "admin console: confirm", err)
		return
	}
	if msg != "" {
		c.renderUser(w, r, a, status, "", "Resetting second factors: "+msg)
		return
	}
	if err := c.Accounts.ResetFactors(r.Context(), a.origin(r), id); err != nil {
		if !c.userError(w, r, a, err) {
			c.fail(w, r, "admin console: reset factors", err)
		}
		return
	}
	done(w, r, id, "mfa_reset")
}
