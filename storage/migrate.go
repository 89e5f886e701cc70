package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"strings"

	"github.com/golang-migrate/migrate/v4"
	migratepgx "github.com/golang-migrate/migrate/v4/database/pgx/v5"
	"github.com/golang-migrate/migrate/v4/source/iofs"
	"github.com/jackc/pgx/v5/pgxpool"
	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx" for golang-migrate

	"github.com/authd/authd/migrations"
)

// Migrator runs the embedded migrations against one database.
type Migrator struct {
	m  *migrate.Migrate
	db *sql.DB
}

// NewMigrator connects to url with database/sql (golang-migrate's driver needs
// it) and prepares the embedded migrations. Close it when done.
func NewMigrator(url string) (*Migrator, error) {
	src, err := iofs.New(migrations.FS, ".")
	if err != nil {
		return nil, fmt.Errorf("storage: read embedded migrations: %w", err)
	}
	db, err := sql.Open("pgx", url)
	if err != nil {
		return nil, fmt.Errorf("storage: open database for migrations: %w", err)
	}
	drv, err := migratepgx.WithInstance(db, &migratepgx.Config{})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("storage: prepare migrations: %w", err)
	}
	m, err := migrate.NewWithInstance("iofs", src, "pgx5", drv)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("storage: prepare migrations: %w", err)
	}
	return &Migrator{m: m, db: db}, nil
}

// Up applies every pending migration; it is a no-op when none is pending.
func (mg *Migrator) Up() error {
	if err := mg.m.Up(); err != nil && !errors.Is(err, migrate.ErrNoChange) {
		return fmt.Errorf("storage: migrate up: %w", err)
	}
	return nil
}

// Down undoes the last n migrations.
func (mg *Migrator) Down(n int) error {
	if n <= 0 {
		return fmt.Errorf("storage: migrate down: N must be positive, got %d", n)
	}
	if err := mg.m.Steps(-n); err != nil && !errors.Is(err, migrate.ErrNoChange) {
		return fmt.Errorf("storage: migrate down %d: %w", n, err)
	}
	return nil
}

// Version returns the applied version (0 when none) and whether the last
// migration failed half-way.
func (mg *Migrator) Version() (version uint, dirty bool, err error) {
	v, d, err := mg.m.Version()
	if errors.Is(err, migrate.ErrNilVersion) {
		return 0, false, nil
	}
	return v, d, err
}

// Close releases the migrator's connection.
func (mg *Migrator) Close() error {
	se, de := mg.m.Close()
	return errors.Join(se, de, mg.db.Close())
}

// Migrate applies every pending migration to the database at url.
func Migrate(url string) error {
	mg, err := NewMigrator(url)
	if err != nil {
		return err
	}
	defer mg.Close()
	return mg.Up()
}

// LatestVersion is the highest migration version embedded in the binary.
func LatestVersion() uint {
	entries, _ := fs.ReadDir(migrations.FS, ".")
	var latest uint
	for _, e := range entries {
		num, _, ok := strings.Cut(e.Name(), "_")
		if !ok {
			continue
		}
		if v, err := strconv.ParseUint(num, 10, 64); err == nil && uint(v) > latest {
			latest = uint(v)
		}
	}
	return latest
}

// SchemaStatus reports whether the database is reachable and its schema is at
// the version this binary embeds. It is what /readyz asks.
func SchemaStatus(ctx context.Context, pool *pgxpool.Pool) error {
	var version int64
	var dirty bool
	err := pool.QueryRow(ctx, `SELECT version, dirty FROM schema_migrations LIMIT 1`).Scan(&version, &dirty)
	if err != nil {
		return fmt.Errorf("database unavailable or not migrated: %w", err)
	}
	if dirty {
		return fmt.Errorf("migration %d failed half-way (dirty)", version)
	}
	if want := LatestVersion(); uint(version) < want {
		return fmt.Errorf("migrations behind: database at %d, binary needs %d", version, want)
	}
	return nil
}
