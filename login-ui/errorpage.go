package loginui

import (
	"bytes"
	"context"
	"html/template"
	"net/http"
	"net/url"
	"sort"

	"go.uber.org/zap"

	"github.com/authd/authd/internal/reqctx"
)

// ErrorData is the content of the hosted error page: an error code a
// developer can search for and a sentence for the person in front of it.
// Neither ever holds internal detail; the request id ties the page to the
// server's log.
type ErrorData struct {
	Code    string
	Message string
}

// RenderError renders the hosted error page. It needs no request, only its
// context (for the request id), so code that holds just a ResponseWriter
// can answer a browser with a page rather than JSON.
func (ui *UI) RenderError(ctx context.Context, w http.ResponseWriter, status int, title string, e ErrorData) {
	ui.renderPlain(ctx, w, status, "error", Page{Title: title, Data: e})
}

// FormPostData is the content of an OAuth 2.0 Form Post Response (OAuth 2.0
// Form Post Response Mode §2): the client's redirect URI and the response
// parameters, posted by the browser.
type FormPostData struct {
	// Action is a redirect URI registered for the client and matched
	// exactly; registration refuses the schemes that run code, so
	// html/template need not rewrite a native app's custom scheme.
	Action template.URL
	Params []FormParam
}

// FormParam is one hidden field of a form_post response.
type FormParam struct{ Name, Value string }

// RenderFormPost writes a form_post authorization response: a page whose
// form posts params to action. Hosted pages run no script, so the user
// submits it with its one button.
func (ui *UI) RenderFormPost(ctx context.Context, w http.ResponseWriter, action string, params url.Values) {
	names := make([]string, 0, len(params))
	for k := range params {
		names = append(names, k)
	}
	sort.Strings(names)
	d := FormPostData{Action: template.URL(action)}
	for _, k := range names {
		for _, v := range params[k] {
			d.Params = append(d.Params, FormParam{Name: k, Value: v})
		}
	}
	ui.renderPlain(ctx, w, http.StatusOK, "form_post", Page{Title: "Return to the application", Data: d})
}

// renderPlain renders a page that has no form of its own (no CSRF token).
func (ui *UI) renderPlain(ctx context.Context, w http.ResponseWriter, status int, name string, p Page) {
	t, ok := ui.pages[name]
	if !ok {
		ui.log.Error("unknown page template", zap.String("page", name))
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	p.RequestID = reqctx.RequestID(ctx)
	var buf bytes.Buffer
	if err := t.Execute(&buf, p); err != nil {
		reqctx.Logger(ctx).Error("render page", zap.String("page", name), zap.Error(err))
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	PageHeaders(w)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}
