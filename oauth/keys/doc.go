// Package keys owns authd's JWT signing keys: generating them, storing their
// private halves encrypted in Postgres, scheduling their rotation, and
// publishing their public halves as a JWKS.
//
// Each algorithm (ES256, RS256) has a chain of keys. A key row carries a
// schedule instead of a state flag: it signs while activates_at <= now <
// retires_at and is published in JWKS from the moment it is created until
// retires_at + Config.RetainAfter, so every token it signed can still be
// verified. The chain always holds one pre-published "next" key whose
// activates_at is the active key's retires_at; it is in JWKS for at least
// Config.Prepublish before it signs anything.
//
// Flow: Start loads the keys (failing clearly on a wrong AUTHD_SECRETS_KEY),
// creates whatever the schedule is missing under a transaction-scoped
// advisory lock (so exactly one replica creates each key; the unique
// (alg, generation) constraint is the backstop), and runs a loop that every
// Config.PollInterval reloads the keys when the table's fingerprint changed
// and extends the chain when a next key has become active. Rotate moves the
// schedule forward by hand. Every replica sees a rotation within one poll.
//
// Only *ecdsa.PrivateKey and *rsa.PrivateKey leave this package; go-jose v4
// is used for thumbprints and the JWKS document and nothing else.
package keys
