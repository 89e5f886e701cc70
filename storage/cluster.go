package storage

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
)

// Cluster is a private PostgreSQL server run from the initdb/pg_ctl binaries on
// this machine, for `authd dev` and the tests. It listens on 127.0.0.1 only and
// trusts local connections, so it must never hold production data.
type Cluster struct {
	// Dir is the data directory; it is created (and initdb'd) when missing and
	// reused when it already holds a cluster.
	Dir string
	// Port is the TCP port on 127.0.0.1; 0 picks a free one at Start.
	Port int
	// Durable keeps fsync on. Tests turn it off: their databases are throwaway.
	Durable bool
	// Settings are more server settings ("name=value", passed as -c), for
	// this run only (the bench's pg_stat_statements).
	Settings []string

	bin  string
	cred *syscall.Credential // non-nil when we run as root and drop to an unprivileged user
}

// ErrNoPostgres means no PostgreSQL server binaries were found.
var ErrNoPostgres = errors.New("no PostgreSQL server binaries (initdb, pg_ctl) found on PATH or in /usr/lib/postgresql/*/bin; install them with: apt-get install -y postgresql")

// FindPostgresBin returns the directory holding initdb and pg_ctl.
func FindPostgresBin() (string, error) {
	if p, err := exec.LookPath("pg_ctl"); err == nil {
		if real, err := filepath.EvalSymlinks(p); err == nil {
			p = real
		}
		dir := filepath.Dir(p)
		if _, err := os.Stat(filepath.Join(dir, "initdb")); err == nil {
			return dir, nil
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	// Prefer the newest major version.
	sort.Slice(dirs, func(i, j int) bool { return versionOf(dirs[i]) > versionOf(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	return "", ErrNoPostgres
}

func versionOf(binDir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return v
}

// URL is the connection string for database db on the cluster.
func (c *Cluster) URL(db string) string {
	return fmt.Sprintf("postgres://authd@127.0.0.1:%d/%s?sslmode=disable", c.Port, db)
}

// Start initialises the data directory if needed and starts the server,
// waiting until it accepts connections. It creates database "authd" when new.
func (c *Cluster) Start(ctx context.Context) error {
	bin, err := FindPostgresBin()
	if err != nil {
		return err
	}
	c.bin = bin
	if os.Geteuid() == 0 {
		// initdb and postgres refuse to run as root.
		cred, err := unprivilegedUser()
		if err != nil {
			return err
		}
		c.cred = cred
	}
	if c.Port == 0 {
		if c.Port, err = freePort(); err != nil {
			return err
		}
	}
	// The parent must be traversable by the unprivileged server user.
	if err := os.MkdirAll(filepath.Dir(c.Dir), 0o711); err != nil {
		return fmt.Errorf("storage: create cluster dir %s: %w", c.Dir, err)
	}
	if err := os.MkdirAll(c.Dir, 0o700); err != nil {
		return fmt.Errorf("storage: create cluster dir %s: %w", c.Dir, err)
	}
	if err := c.chown(c.Dir); err != nil {
		return err
	}
	fresh := false
	if _, err := os.Stat(filepath.Join(c.Dir, "PG_VERSION")); errors.Is(err, os.ErrNotExist) {
		fresh = true
		if out, err := c.run(ctx, "initdb", "-D", c.Dir, "-U", "authd", "--auth=trust", "-E", "UTF8", "--locale=C", "--no-instructions"); err != nil {
			return fmt.Errorf("storage: initdb %s: %w\n%s", c.Dir, err, out)
		}
	}
	opts := []string{
		"-p " + strconv.Itoa(c.Port),
		"-c listen_addresses=127.0.0.1",
		"-c unix_socket_directories=''",
		"-c max_connections=200",
	}
	if !c.Durable {
		opts = append(opts, "-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off")
	}
	for _, kv := range c.Settings {
		opts = append(opts, "-c "+kv)
	}
	logFile := filepath.Join(c.Dir, "server.log")
	if out, err := c.run(ctx, "pg_ctl", "start", "-w", "-t", "60", "-D", c.Dir, "-l", logFile, "-o", strings.Join(opts, " ")); err != nil {
		log, _ := os.ReadFile(logFile)
		return fmt.Errorf("storage: pg_ctl start %s: %w\n%s\n%s", c.Dir, err, out, tail(log, 2000))
	}
	if fresh {
		if out, err := c.run(ctx, "createdb", "-h", "127.0.0.1", "-p", strconv.Itoa(c.Port), "-U", "authd", "authd"); err != nil {
			return fmt.Errorf("storage: createdb authd: %w\n%s", err, out)
		}
	}
	return nil
}

// Stop shuts the server down (fast mode: open transactions roll back).
func (c *Cluster) Stop(ctx context.Context) error {
	if c.bin == "" {
		return nil
	}
	if out, err := c.run(ctx, "pg_ctl", "stop", "-w", "-m", "fast", "-D", c.Dir); err != nil {
		return fmt.Errorf("storage: pg_ctl stop %s: %w\n%s", c.Dir, err, out)
	}
	return nil
}

// Restart starts a stopped cluster again on the same port.
func (c *Cluster) Restart(ctx context.Context) error { return c.Start(ctx) }

func (c *Cluster) run(ctx context.Context, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(c.bin, name), args...)
	cmd.Dir = c.Dir
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	if c.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred}
	}
	// The server must outlive neither a Ctrl-C in a terminal nor our process
	// group's signals before we stop it ourselves.
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	return cmd.CombinedOutput()
}

func (c *Cluster) chown(dir string) error {
	if c.cred == nil {
		return nil
	}
	return filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, int(c.cred.Uid), int(c.cred.Gid))
	})
}

func unprivilegedUser() (*syscall.Credential, error) {
	for _, name := range []string{"postgres", "nobody"} {
		u, err := user.Lookup(name)
		if err != nil {
			continue
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
	}
	return nil, errors.New("storage: running as root and no unprivileged user (postgres, nobody) to run PostgreSQL as")
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("storage: find free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}
