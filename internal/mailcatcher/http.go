package mailcatcher

import (
	"html/template"
	"net/http"
	"slices"
	"strings"
)

// ServeHTTP lists the caught messages, newest first, as an HTML page whose
// links are clickable (the page for /dev/mail).
func (c *Catcher) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	msgs := c.Messages()
	slices.Reverse(msgs)
	views := make([]view, len(msgs))
	for i, m := range msgs {
		views[i] = view{Message: m, Body: linkify(m.Text)}
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self' 'unsafe-inline'; base-uri 'none'; frame-ancestors 'none'")
	h.Set("Referrer-Policy", "no-referrer")
	_ = c.page.Execute(w, views)
}

type view struct {
	Message
	Body template.HTML
}

// linkify escapes text and turns its URLs into links.
func linkify(text string) template.HTML {
	var b strings.Builder
	last := 0
	for _, loc := range linkRE.FindAllStringIndex(text, -1) {
		b.WriteString(template.HTMLEscapeString(text[last:loc[0]]))
		u := template.HTMLEscapeString(text[loc[0]:loc[1]])
		b.WriteString(`<a href="` + u + `">` + u + `</a>`)
		last = loc[1]
	}
	b.WriteString(template.HTMLEscapeString(text[last:]))
	return template.HTML(b.String()) // #nosec: every piece above is escaped
}

func newPage() *template.Template {
	return template.Must(template.New("mail").Parse(pageSource))
}

const pageSource = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Caught mail · authd</title>
<style>
body{margin:0;font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;background:#f4f6fa;color:#1d2330}
main{max-width:52rem;margin:2rem auto;padding:0 1rem}
h1{font-size:1.5rem}
article{background:#fff;border-radius:12px;padding:1.25rem 1.5rem;margin:0 0 1rem;box-shadow:0 1px 3px rgba(20,30,60,.08)}
h2{font-size:1.1rem;margin:0 0 .25rem}
.meta{color:#5b6478;font-size:.875rem;margin:0 0 .75rem}
pre{white-space:pre-wrap;word-break:break-word;font:inherit;margin:0}
a{color:#2f5bea}
</style></head><body><main>
<h1>Caught mail</h1>
<p class="meta">Messages sent by authd in development land here instead of real inboxes. Newest first.</p>
{{range .}}<article id="m{{.ID}}">
<h2>{{.Subject}}</h2>
<p class="meta">To {{range $i, $t := .To}}{{if $i}}, {{end}}{{$t}}{{end}} · from {{.From}} · {{.Received.Format "2006-01-02 15:04:05"}}</p>
<pre>{{.Body}}</pre>
</article>{{else}}<article><p>No mail yet.</p></article>{{end}}
</main></body></html>`
