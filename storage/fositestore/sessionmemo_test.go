package fositestore

import (
	"testing"

	"github.com/ory/fosite"
)

// Within a refresh transaction the rotation's one session is encoded once
// for both of its rows; another session, or none remembered, is encoded.
func TestSessionMemo_EncodesEachSessionOnce(t *testing.T) {
	a := &fosite.DefaultSession{Subject: "alice"}
	b := &fosite.DefaultSession{Subject: "bob"}
	var m sessionMemo
	first, err := m.encode(a)
	if err != nil {
		t.Fatal(err)
	}
	a.Subject = "changed after encoding" // not seen: the same session is not encoded again
	if again, _ := m.encode(a); again != first {
		t.Fatalf("same session encoded again: %s, want %s", again, first)
	}
	if other, _ := m.encode(b); other == first {
		t.Fatal("another session got the first one's encoding")
	}
	var none *sessionMemo
	if x, _ := none.encode(a); x == first {
		t.Fatal("without a memo the session must be encoded anew")
	}
}
