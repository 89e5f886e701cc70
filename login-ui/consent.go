package loginui

// ConsentData is the data of templates/consent.html.
type ConsentData struct {
	ClientName string
	ClientID   string
	UserEmail  string
	Scopes     []ScopeInfo
	// Audiences are the services the token will be valid at; remembered
	// consent covers only these.
	Audiences []string
	// ReturnTo is the authorization request the form posts back to /consent.
	ReturnTo string
}

// ScopeInfo is a requested scope and what it lets the client do.
type ScopeInfo struct {
	Name        string
	Description string
}

// scopeDescriptions says, for the consent page, what granting each scope
// means, in words a user understands.
var scopeDescriptions = map[string]string{
	"openid":         "Know who you are (your account ID)",
	"profile":        "See your name and roles",
	"email":          "See your email address and whether it is verified",
	"roles":          "See your roles",
	"offline_access": "Stay signed in and act for you while you are away",
	"introspect":     "Check whether tokens are still valid",
	"admin":          "Administer users, roles and clients",
	"credits:read":   "See your credit balance and history",
	"credits:spend":  "Spend your credits",
	"credits:charge": "Spend your credits on your behalf",
	"credits:grant":  "Add credits to accounts",
	"account":        "Change your name, email address and password, and see and end your signed-in sessions",
}

// ScopeDescription returns the human description of scope.
func ScopeDescription(scope string) string {
	if d, ok := scopeDescriptions[scope]; ok {
		return d
	}
	return "Access “" + scope + "”"
}

// NewConsentData builds the consent page data for the requested scopes.
// audiences are the services the token will be valid at.
func NewConsentData(clientName, clientID, email string, scopes, audiences []string, returnTo string) ConsentData {
	d := ConsentData{ClientName: clientName, ClientID: clientID, UserEmail: email, ReturnTo: returnTo, Audiences: audiences}
	if d.ClientName == "" {
		d.ClientName = clientID
	}
	for _, s := range scopes {
		d.Scopes = append(d.Scopes, ScopeInfo{Name: s, Description: ScopeDescription(s)})
	}
	return d
}
