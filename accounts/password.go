package accounts

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
)

// PasswordHasher hashes and checks user passwords. Hashing is CPU-bound and
// deliberately slow, so it runs behind a concurrency limit sized to the cores:
// a login flood queues here instead of starving token issuance.
type PasswordHasher struct {
	algo       string // "bcrypt" or "argon2id"
	bcryptCost int
	argon      argonParams
	slots      chan struct{}

	dummyOnce sync.Once
	dummy     []byte

	// ops counts slow hash computations, so tests can prove every login
	// costs the same number whatever the account and password length.
	ops atomic.Uint64
}

// Ops returns how many slow hash computations (bcrypt or argon2id, hashing
// or checking) the hasher has run.
func (h *PasswordHasher) Ops() uint64 { return h.ops.Load() }

type argonParams struct {
	time, memoryKiB uint32
	threads         uint8
	keyLen          uint32
}

// defaultArgon follows RFC 9106's second recommended option (64 MiB, t=3).
var defaultArgon = argonParams{time: 3, memoryKiB: 64 * 1024, threads: 2, keyLen: 32}

// NewPasswordHasher returns a hasher for algo ("bcrypt" or "argon2id"). A zero
// bcryptCost means bcrypt.DefaultCost; maxConcurrent <= 0 means GOMAXPROCS.
func NewPasswordHasher(algo string, bcryptCost, maxConcurrent int) (*PasswordHasher, error) {
	switch algo {
	case "", "bcrypt":
		algo = "bcrypt"
	case "argon2id":
	default:
		return nil, fmt.Errorf("accounts: unknown password hash %q (want bcrypt or argon2id)", algo)
	}
	if bcryptCost == 0 {
		bcryptCost = bcrypt.DefaultCost
	}
	if bcryptCost < bcrypt.MinCost || bcryptCost > bcrypt.MaxCost {
		return nil, fmt.Errorf("accounts: bcrypt cost %d out of range %d..%d", bcryptCost, bcrypt.MinCost, bcrypt.MaxCost)
	}
	if maxConcurrent <= 0 {
		maxConcurrent = runtime.GOMAXPROCS(0)
	}
	return &PasswordHasher{algo: algo, bcryptCost: bcryptCost, argon: defaultArgon, slots: make(chan struct{}, maxConcurrent)}, nil
}

// MaxPasswordBytes is bcrypt's input limit; longer passwords are refused
// rather than silently truncated.
const MaxPasswordBytes = 72

func (h *PasswordHasher) acquire(ctx context.Context) error {
	select {
	case h.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (h *PasswordHasher) release() { <-h.slots }

// Hash returns the encoded hash of password.
func (h *PasswordHasher) Hash(ctx context.Context, password string) (string, error) {
	if err := h.acquire(ctx); err != nil {
		return "", err
	}
	defer h.release()
	if h.algo == "argon2id" {
		h.ops.Add(1)
		salt := make([]byte, 16)
		if _, err := rand.Read(salt); err != nil {
			return "", err
		}
		p := h.argon
		key := argon2.IDKey([]byte(password), salt, p.time, p.memoryKiB, p.threads, p.keyLen)
		return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.memoryKiB, p.time, p.threads,
			base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key)), nil
	}
	if len(password) > MaxPasswordBytes {
		return "", fmt.Errorf("accounts: password longer than %d bytes", MaxPasswordBytes)
	}
	h.ops.Add(1)
	b, err := bcrypt.GenerateFromPassword([]byte(password), h.bcryptCost)
	return string(b), err
}

// Verify reports whether password matches encoded, and whether the hash should
// be replaced because the configured algorithm or parameters changed.
func (h *PasswordHasher) Verify(ctx context.Context, encoded, password string) (ok, rehash bool, err error) {
	if err := h.acquire(ctx); err != nil {
		return false, false, err
	}
	defer h.release()
	if strings.HasPrefix(encoded, "$argon2id$") {
		p, salt, key, err := parseArgon(encoded)
		if err != nil {
			return false, false, err
		}
		h.ops.Add(1)
		got := argon2.IDKey([]byte(password), salt, p.time, p.memoryKiB, p.threads, uint32(len(key)))
		ok = subtle.ConstantTimeCompare(got, key) == 1
		return ok, ok && (h.algo != "argon2id" || p != h.argon), nil
	}
	if encoded == "" || len(password) > MaxPasswordBytes {
		// An account without a password (upstream logins only) matches
		// nothing, and no bcrypt password is this long; answering at once
		// would tell a known account from an unknown one: spend a check anyway.
		h.spendBcrypt(password)
		return false, false, nil
	}
	h.ops.Add(1)
	err = bcrypt.CompareHashAndPassword([]byte(encoded), []byte(password))
	if errors.Is(err, bcrypt.ErrMismatchedHashAndPassword) {
		return false, false, nil
	}
	if err != nil {
		return false, false, fmt.Errorf("accounts: stored bcrypt hash unreadable: %w", err)
	}
	cost, _ := bcrypt.Cost([]byte(encoded))
	return true, h.algo != "bcrypt" || cost != h.bcryptCost, nil
}

// dummyCompare spends the time a real check would, so unknown emails cannot be
// told apart from wrong passwords by timing.
func (h *PasswordHasher) dummyCompare(ctx context.Context, password string) {
	if h.algo == "argon2id" {
		_, _, _ = h.Verify(ctx, "$argon2id$v=19$m=65536,t=3,p=2$c2FsdHNhbHRzYWx0c2FsdA$ZHVtbXlkdW1teWR1bW15ZHVtbXlkdW1teWR1bW15ZHU", password)
		return
	}
	if h.acquire(ctx) != nil {
		return
	}
	defer h.release()
	h.spendBcrypt(password)
}

// spendBcrypt runs one full bcrypt check that cannot succeed. bcrypt reads
// at most 72 bytes (GenerateFromPassword refuses more); longer inputs are
// cut to 72 so the check is exactly the one a stored hash would get.
func (h *PasswordHasher) spendBcrypt(password string) {
	if len(password) > MaxPasswordBytes {
		password = password[:MaxPasswordBytes]
	}
	h.ops.Add(1)
	_ = bcrypt.CompareHashAndPassword(h.dummyBcrypt(), []byte(password))
}

// dummyBcrypt is a hash at the configured cost of a password nobody knows,
// made once on first use rather than at start-up.
func (h *PasswordHasher) dummyBcrypt() []byte {
	h.dummyOnce.Do(func() {
		h.dummy, _ = bcrypt.GenerateFromPassword([]byte(rand.Text()), h.bcryptCost)
	})
	return h.dummy
}

func parseArgon(s string) (argonParams, []byte, []byte, error) {
	var p argonParams
	parts := strings.Split(s, "$")
	if len(parts) != 6 {
		return p, nil, nil, errors.New("accounts: malformed argon2id hash")
	}
	var v int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &v); err != nil || v != argon2.Version {
		return p, nil, nil, errors.New("accounts: unsupported argon2 version")
	}
	var threads uint32
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.memoryKiB, &p.time, &threads); err != nil {
		return p, nil, nil, errors.New("accounts: malformed argon2id parameters")
	}
	p.threads = uint8(threads)
	salt, err1 := base64.RawStdEncoding.DecodeString(parts[4])
	key, err2 := base64.RawStdEncoding.DecodeString(parts[5])
	if err1 != nil || err2 != nil {
		return p, nil, nil, errors.New("accounts: malformed argon2id hash encoding")
	}
	p.keyLen = uint32(len(key))
	return p, salt, key, nil
}
