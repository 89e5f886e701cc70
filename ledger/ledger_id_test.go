package ledger

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

// Transaction ids are UUIDv7: valid UUIDs that begin with their creation
// time in Unix milliseconds, so that inserts append to the indexes instead
// of touching random pages.
func TestNewID_TimeOrderedUUIDv7(t *testing.T) {
	before := time.Now().UnixMilli()
	id := newID()
	after := time.Now().UnixMilli()
	if !validUUID(id) || id[14] != '7' || !strings.ContainsRune("89ab", rune(id[19])) {
		t.Fatalf("newID() = %q; want an RFC 9562 version 7 UUID", id)
	}
	ms, err := strconv.ParseInt(strings.ReplaceAll(id[:13], "-", ""), 16, 64)
	if err != nil || ms < before || ms > after {
		t.Fatalf("newID() = %q carries time %d ms; want between %d and %d", id, ms, before, after)
	}
	if newID() == newID() {
		t.Fatal("two ids in the same millisecond are equal")
	}
}
