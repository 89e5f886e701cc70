package fositestore_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"testing"

	"github.com/authd/authd/storage/fositestore"
)

// FuzzSHA256HasherCompare: Compare accepts exactly the secret whose
// SHA-256 is the stored hash (RFC 9700 §2.5; the constant-time code path is
// checked in cmd/authd TestRFC9700_2_5_TimingSafeSecretComparison).
func FuzzSHA256HasherCompare(f *testing.F) {
	f.Add([]byte("s3cret"), []byte("s3cret"))
	f.Add([]byte("s3cret"), []byte("s3creT"))
	f.Add([]byte(""), []byte(""))
	f.Add([]byte("a"), []byte("a\x00"))
	h := fositestore.SHA256Hasher{}
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, secret, guess []byte) {
		stored, err := h.Hash(ctx, secret)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(guess)
		match := string(sum[:]) == string(stored)
		err = h.Compare(ctx, stored, guess)
		if match != (err == nil) {
			t.Fatalf("secret %q guess %q: Compare=%v", secret, guess, err)
		}
		if err != nil && !errors.Is(err, fositestore.ErrSecretMismatch) {
			t.Fatalf("mismatch error %v", err)
		}
		// A truncated or empty stored hash never matches.
		if h.Compare(ctx, stored[:len(stored)-1], guess) == nil || h.Compare(ctx, nil, guess) == nil {
			t.Fatal("a malformed stored hash matched")
		}
	})
}
