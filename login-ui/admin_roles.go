package loginui

import (
	"errors"
	"net/http"

	"github.com/gorilla/mux"

	"github.com/authd/authd/accounts"
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
