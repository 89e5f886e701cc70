package mail

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	texttemplate "text/template"
)

//go:embed templates
var embedded embed.FS

// Template names: each has <name>.txt (defining "subject" and the plain-text
// body) and <name>.html (the HTML body).
const (
	VerifyEmail     = "verify_email"
	PasswordReset   = "password_reset"
	PasswordChanged = "password_changed"
	// EmailChangeRequested goes to the old address when a change of the
	// account's email starts; its link cancels the change.
	EmailChangeRequested = "email_change_requested"
	// FactorChanged tells the user a second factor was added, removed or
	// used (Data.Factor, Data.Action).
	FactorChanged = "factor_changed"
	// LinkIdentity proves an account before an upstream provider's
	// identity is linked to it.
	LinkIdentity = "link_identity"
	// PasskeyAdded and PasskeyRemoved tell the user a passkey (named in
	// Data.Factor) was added to or removed from the account.
	PasskeyAdded   = "passkey_added"
	PasskeyRemoved = "passkey_removed"
	// FactorGuessed tells the user that wrong second-factor codes, each
	// after the right password, locked the account's second factor.
	FactorGuessed = "factor_guessed"
)

// Data is what every mail template receives.
type Data struct {
	Name    string // the user's display name, may be empty
	Email   string // the recipient
	Link    string // the action link (verification, reset), if any
	Expires string // human lifetime of the link, e.g. "24 hours"
	BaseURL string // authd's public URL
	// NewEmail is the address an email change moves to (EmailChangeRequested).
	NewEmail string
	// Factor ("totp", "recovery", "all", a passkey's name, …) and Action
	// ("added", "removed", "replaced", "used") describe a change of
	// sign-in factors.
	Factor, Action string
	// Provider is the upstream identity provider's display name (LinkIdentity).
	Provider string
}

// Templates renders mail. Create it with LoadTemplates.
type Templates struct {
	text map[string]*texttemplate.Template
	html map[string]*htmltemplate.Template
}

// LoadTemplates parses the embedded templates; a file of the same name in dir
// (AUTHD_MAIL_TEMPLATES_DIR, may be "") replaces the embedded one.
func LoadTemplates(dir string) (*Templates, error) {
	t := &Templates{text: map[string]*texttemplate.Template{}, html: map[string]*htmltemplate.Template{}}
	for _, name := range []string{VerifyEmail, PasswordReset, PasswordChanged, EmailChangeRequested, FactorChanged, LinkIdentity, PasskeyAdded, PasskeyRemoved, FactorGuessed} {
		src, err := read(dir, name+".txt")
		if err != nil {
			return nil, err
		}
		tt, err := texttemplate.New(name).Option("missingkey=error").Parse(src)
		if err != nil {
			return nil, fmt.Errorf("mail: parse %s.txt: %w", name, err)
		}
		if tt.Lookup("subject") == nil {
			return nil, fmt.Errorf("mail: %s.txt must {{define \"subject\"}}", name)
		}
		t.text[name] = tt
		if src, err = read(dir, name+".html"); err != nil {
			return nil, err
		}
		ht, err := htmltemplate.New(name).Option("missingkey=error").Parse(src)
		if err != nil {
			return nil, fmt.Errorf("mail: parse %s.html: %w", name, err)
		}
		t.html[name] = ht
	}
	return t, nil
}

func read(dir, file string) (string, error) {
	if dir != "" {
		b, err := os.ReadFile(filepath.Join(dir, file))
		if err == nil {
			return string(b), nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("mail: read template: %w", err)
		}
	}
	b, err := embedded.ReadFile("templates/" + file)
	if err != nil {
		return "", fmt.Errorf("mail: no template %s: %w", file, err)
	}
	return string(b), nil
}

// Render returns the subject and both bodies of template name.
func (t *Templates) Render(name string, d Data) (subject, text, html string, err error) {
	tt, ok := t.text[name]
	if !ok {
		return "", "", "", fmt.Errorf("mail: unknown template %q", name)
	}
	var sb, tb, hb bytes.Buffer
	if err := tt.ExecuteTemplate(&sb, "subject", d); err != nil {
		return "", "", "", fmt.Errorf("mail: render %s subject: %w", name, err)
	}
	if err := tt.Execute(&tb, d); err != nil {
		return "", "", "", fmt.Errorf("mail: render %s.txt: %w", name, err)
	}
	if err := t.html[name].Execute(&hb, d); err != nil {
		return "", "", "", fmt.Errorf("mail: render %s.html: %w", name, err)
	}
	// A subject is one line whatever the template's whitespace.
	subject = strings.Join(strings.Fields(sb.String()), " ")
	return subject, strings.TrimSpace(tb.String()) + "\n", hb.String(), nil
}
