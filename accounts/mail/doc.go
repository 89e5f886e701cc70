// Package mail turns authd's mail templates into MIME messages and submits
// them over SMTP with emersion/go-smtp. It knows nothing about the outbox:
// accounts.Worker renders a queued row with Templates, builds it with Build
// and hands it to a Sender, retrying on error.
package mail
