package ledger

import (
	"testing"
	"time"
)

// Transaction ids are UUIDv7: valid UUIDs whose order follows time, so that
// inserts append to the indexes instead of touching random pages.
func TestNewID_TimeOrderedUUIDv7(t *testing.T) {
	first := newID()
	time.Sleep(2 * time.Millisecond) // two distinct milliseconds, not synchronisation
	second := newID()
	for _, id := range []string{first, second} {
		if !validUUID(id) || id[14] != '7' || (id[19] < '8' || id[19] > 'b') {
			t.Fatalf("newID() = %q; want an RFC 9562 version 7 UUID", id)
		}
	}
	if !(first < second) {
		t.Fatalf("ids not in time order: %q then %q", first, second)
	}
	if newID() == newID() {
		t.Fatal("two ids in the same millisecond are equal")
	}
}
