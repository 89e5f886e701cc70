package ledger_test

import (
	"encoding/json"
	"errors"
	"strconv"
	"testing"

	"github.com/authd/authd/ledger"
)

// FuzzParseAmount: an amount is accepted only as a plain JSON integer from 1
// to the largest int64, and then it is exactly that integer; everything
// else is a *ValidationError naming "amount" (DESIGN, ledger invariant 5).
func FuzzParseAmount(f *testing.F) {
	for _, s := range []string{"1", "42", "9223372036854775807", "9223372036854775808", "0", "-1", "-0", "01",
		"1.0", "1e3", "1E3", "0x10", `"5"`, "null", "", " 1", "1 ", "+1", "-", "true", "[1]", "{}", "１", "\u0661",
		"99999999999999999999999999", "-9223372036854775808", "1_000"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		n, err := ledger.ParseAmount(json.RawMessage(raw))
		if err != nil {
			var ve *ledger.ValidationError
			if !errors.As(err, &ve) || ve.Field != "amount" {
				t.Fatalf("%q: error %v is not a ValidationError on amount", raw, err)
			}
			if n != 0 {
				t.Fatalf("%q: error with amount %d", raw, n)
			}
			return
		}
		if n < 1 {
			t.Fatalf("%q accepted as %d", raw, n)
		}
		// Accepted means: a JSON number that is that integer, nothing else.
		var num json.Number
		if json.Unmarshal(raw, &num) != nil {
			t.Fatalf("%q accepted but is not a JSON number", raw)
		}
		if v, err := strconv.ParseInt(string(num), 10, 64); err != nil || v != n {
			t.Fatalf("%q accepted as %d", raw, n)
		}
	})
}
