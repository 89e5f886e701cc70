package storage_test

import (
	"testing"

	"github.com/authd/authd/storage"
)

func TestValues(t *testing.T) {
	for _, tc := range []struct {
		name string
		got  string
		want string
	}{
		{"OneRow", storage.Values(1, 3), "($1, $2, $3)"},
		{"RowsNumberedOnward", storage.Values(3, 2), "($1, $2), ($3, $4), ($5, $6)"},
		{"FirstRowCast", storage.Values(2, 2, "uuid", ""), "($1::uuid, $2), ($3, $4)"},
		{"NoRows", storage.Values(0, 4), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.got != tc.want {
				t.Fatalf("got %q, want %q", tc.got, tc.want)
			}
		})
	}
}

func TestParams(t *testing.T) {
	if got, want := storage.Params(2, 3, "text", "jsonb", "text[]"), "$3::text, $4::jsonb, $5::text[]"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	if got, want := storage.Params(0, 2), "$1, $2"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}
