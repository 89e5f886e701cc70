// Package clients is authd's OAuth client registry: the rules a client's
// registration must meet (Registry, Spec), the keys a private_key_jwt client
// registers, an administrator's audited changes (Admin, shared by the admin
// API and the console) and the client routes of the admin API.
// The clients themselves are rows of storage/fositestore.
package clients
