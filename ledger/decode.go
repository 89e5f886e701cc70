package ledger

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"github.com/authd/authd/internal/problem"
)

// postingBody is the JSON of spend and grant: {"amount","reference","description"}.
// Amount stays raw so that only a plain JSON integer is accepted: a string,
// a fraction or an exponent never passes through a float.
type postingBody struct {
	Amount      json.RawMessage `json:"amount"`
	Reference   string          `json:"reference"`
	Description string          `json:"description"`
}

type refundBody struct {
	postingBody
	SpendID string `json:"spend_id"`
}

type adjustBody struct {
	postingBody
	Direction string `json:"direction"`
	Reason    string `json:"reason"`
}

// decodePosting reads dst (which embeds pb) from r and builds the Posting
// for t, or writes a 4xx and returns false.
func decodePosting(w http.ResponseWriter, r *http.Request, dst any, pb *postingBody, t target) (Posting, bool) {
	if err := problem.DecodeJSON(w, r, dst); err != nil {
		problem.Write(w, r, err)
		return Posting{}, false
	}
	amount, err := ParseAmount(pb.Amount)
	if err != nil {
		problem.Write(w, r, toProblem(err))
		return Posting{}, false
	}
	return Posting{
		UserID: t.userID, Amount: amount, Reference: pb.Reference, Description: pb.Description,
		Origin: originOf(r, t),
	}, true
}

// ParseAmount accepts a JSON integer between 1 and the largest int64 and
// nothing else. Errors: *ValidationError naming "amount".
func ParseAmount(raw json.RawMessage) (int64, error) {
	invalid := func(detail string) error { return &ValidationError{Field: "amount", Detail: detail} }
	if len(raw) == 0 || string(raw) == "null" {
		return 0, invalid("is required")
	}
	if raw[0] == '"' {
		return 0, invalid("must be a JSON integer, not a string")
	}
	s := string(raw)
	digits := s
	if s[0] == '-' {
		digits = s[1:]
	}
	if digits == "" {
		return 0, invalid("must be a positive integer")
	}
	for i := 0; i < len(digits); i++ {
		if digits[i] < '0' || digits[i] > '9' {
			return 0, invalid("must be a positive integer (no fraction or exponent)")
		}
	}
	if s[0] == '-' {
		return 0, invalid("must be a positive integer")
	}
	if len(digits) > 1 && digits[0] == '0' {
		return 0, invalid("must be a JSON integer (no leading zeros)")
	}
	n, err := strconv.ParseInt(digits, 10, 64)
	if err != nil {
		return 0, invalid("must be at most " + strconv.FormatInt(maxInt64, 10))
	}
	if n == 0 {
		return 0, invalid("must be a positive integer")
	}
	return n, nil
}

// wireErrors are the ledger's sentinel errors as the API answers them;
// toProblem adds the errors that carry figures.
var wireErrors = problem.Table{
	{Err: ErrUserNotFound, Status: http.StatusNotFound, Code: "not_found", Title: "Not Found", Detail: "no such user"},
	{Err: ErrTransactionNotFound, Status: http.StatusNotFound, Code: "not_found", Title: "Not Found", Detail: "no such transaction"},
	{Err: ErrReferenceConflict, Status: http.StatusConflict, Code: "reference_conflict", Title: "Reference conflict",
		Field: "reference", Detail: "this reference was already used with a different request"},
	{Err: ErrSpendNotFound, Status: http.StatusUnprocessableEntity, Code: "spend_not_found", Title: "Spend not found",
		Field: "spend_id", Detail: "no spend with this id on this user's account"},
	{Err: ErrBalanceOverflow, Status: http.StatusUnprocessableEntity, Code: "balance_overflow", Title: "Balance overflow",
		Field: "amount", Detail: "the balance would exceed the largest representable amount"},
}

// toProblem maps ledger errors to their problem documents; anything else
// passes through to problem.Write (500, or 503 when the database is down).
func toProblem(err error) error {
	var ve *ValidationError
	var ie *InsufficientCreditsError
	var re *RefundExceedsError
	var ce *ChargeCapError
	switch {
	case errors.As(err, &ve):
		return &problem.Error{Status: http.StatusBadRequest, Code: "invalid_request", Title: "Invalid request",
			Field: ve.Field, Detail: ve.Field + " " + ve.Detail, Err: err}
	case errors.As(err, &ie):
		return &problem.Error{Status: http.StatusConflict, Code: "insufficient_credits", Title: "Insufficient credits",
			Detail: "the balance is lower than the amount", Err: err,
			Extra: map[string]any{"balance": ie.Balance, "amount": ie.Amount}}
	case errors.As(err, &re):
		return &problem.Error{Status: http.StatusConflict, Code: "refund_exceeds_spend", Title: "Refund exceeds spend",
			Field: "amount", Detail: "the refund is larger than what is left of the spend", Err: err,
			Extra: map[string]any{"remaining": re.Remaining}}
	case errors.As(err, &ce):
		extra := map[string]any{"cap": ce.Cap, "limit": ce.Limit, "amount": ce.Amount}
		detail := "the amount exceeds this client's limit for one charge"
		if ce.Cap == CapPerUserPerDay {
			extra["charged_today"] = ce.Charged
			detail = "the amount would take this client's charges to this user today (UTC) beyond its daily limit"
		}
		return &problem.Error{Status: http.StatusConflict, Code: "charge_cap_exceeded", Title: "Charge cap exceeded",
			Field: "amount", Detail: detail, Err: err, Extra: extra}
	}
	return wireErrors.Map(err)
}
