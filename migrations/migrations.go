// Package migrations embeds authd's forward-only SQL migrations for golang-migrate.
//
// Files are numbered NNNN_name.up.sql. Down files exist only so that
// `authd migrate down N` can undo a release during an upgrade rehearsal; every
// migration is tested from an empty database.
package migrations

import "embed"

// FS holds every migration file.
//
//go:embed *.sql
var FS embed.FS
