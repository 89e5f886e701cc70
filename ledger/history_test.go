package ledger_test

import (
	"context"
	"errors"
	"testing"

	"github.com/authd/authd/ledger"
	"github.com/authd/authd/storage/storagetest"
)

func TestList_NewestFirstKeysetStableUnderInserts(t *testing.T) {
	t.Parallel()
	db := storagetest.NewDB(t)
	l := ledger.New(db.Pool, nil)
	ctx := context.Background()
	u := MustCreateUser(t, db.Pool)
	MustGrant(t, l, u, 1000)
	for range 24 {
		MustSpend(t, l, u, 1)
	}
	var seen []int64
	p := ledger.Page{Limit: 10}
	for page := 0; ; page++ {
		h, err := l.List(ctx, u, p)
		if err != nil {
			t.Fatal(err)
		}
		for _, tx := range h.Items {
			seen = append(seen, tx.Seq)
		}
		// New transactions landing between pages must not shift later pages.
		MustSpend(t, l, u, 1)
		if h.NextCursor == nil {
			break
		}
		p.Cursor = *h.NextCursor
	}
	if len(seen) != 25 {
		t.Fatalf("saw %d transactions, want 25: %v", len(seen), seen)
	}
	for i, s := range seen {
		if s != int64(25-i) {
			t.Fatalf("position %d has seq %d, want %d (newest first, no gaps or repeats): %v", i, s, 25-i, seen)
		}
	}
}

func TestList_KindFilter(t *testing.T) {
	t.Parallel()
	db := storagetest.NewDB(t)
	l := ledger.New(db.Pool, nil)
	ctx := context.Background()
	u := MustCreateUser(t, db.Pool)
	MustGrant(t, l, u, 10)
	MustSpend(t, l, u, 1)
	MustGrant(t, l, u, 10)
	MustSpend(t, l, u, 1)
	h, err := l.List(ctx, u, ledger.Page{Kind: ledger.KindGrant, Limit: 1})
	if err != nil || len(h.Items) != 1 || h.Items[0].Kind != ledger.KindGrant || h.Items[0].Seq != 3 || h.NextCursor == nil {
		t.Fatalf("page 1 = %+v, %v", h, err)
	}
	h, err = l.List(ctx, u, ledger.Page{Kind: ledger.KindGrant, Limit: 1, Cursor: *h.NextCursor})
	if err != nil || len(h.Items) != 1 || h.Items[0].Seq != 1 || h.NextCursor != nil {
		t.Fatalf("page 2 = %+v, %v; want the last grant and no next cursor", h, err)
	}
}

func TestList_Errors(t *testing.T) {
	t.Parallel()
	db := storagetest.NewDB(t)
	l := ledger.New(db.Pool, nil)
	ctx := context.Background()
	u := MustCreateUser(t, db.Pool)
	for _, tc := range []struct {
		name  string
		p     ledger.Page
		field string
	}{
		{"ErrBadCursor", ledger.Page{Cursor: "nonsense"}, "cursor"},
		{"ErrLimitTooLarge", ledger.Page{Limit: ledger.MaxPageSize + 1}, "limit"},
		{"ErrUnknownKind", ledger.Page{Kind: "steal"}, "kind"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var ve *ledger.ValidationError
			if _, err := l.List(ctx, u, tc.p); !errors.As(err, &ve) || ve.Field != tc.field {
				t.Fatalf("err = %v, want validation error on %s", err, tc.field)
			}
		})
	}
	t.Run("ErrUserNotFound", func(t *testing.T) {
		if _, err := l.List(ctx, "00000000-0000-4000-8000-000000000000", ledger.Page{}); !errors.Is(err, ledger.ErrUserNotFound) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("OK_EmptyHistory", func(t *testing.T) {
		h, err := l.List(ctx, u, ledger.Page{})
		if err != nil || h.Items == nil || len(h.Items) != 0 || h.NextCursor != nil {
			t.Fatalf("h = %+v, %v", h, err)
		}
	})
}
