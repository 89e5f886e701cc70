package ledger

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/gorilla/mux"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/authd/authd/internal/audit"
	"github.com/authd/authd/internal/authn"
	"github.com/authd/authd/internal/problem"
)

// Scopes of the credit endpoints. Spending on a user's behalf (charge) and
// minting (grant) are different powers: a service that sells something
// holds credits:charge and cannot create credits.
const (
	ScopeCreditsRead   = "credits:read"
	ScopeCreditsSpend  = "credits:spend"
	ScopeCreditsCharge = "credits:charge"
	ScopeCreditsGrant  = "credits:grant"
)

// Handler serves the credit endpoints of the user, service and admin APIs.
type Handler struct {
	ledger *Ledger
	log    *zap.Logger
	m      *metrics
	caps   CapSource // nil: no client is capped
}

// HandlerOption configures a Handler in NewHandler.
type HandlerOption func(*Handler)

// WithCapSource makes the Handler charge services within the caps src
// reports for them. Without it, or with a nil src, no client is capped.
func WithCapSource(src CapSource) HandlerOption {
	return func(h *Handler) { h.caps = src }
}

// NewHandler returns a Handler over pool, registering its metrics with reg
// (nil: unregistered). It fails only if reg already holds the metrics.
func NewHandler(pool *pgxpool.Pool, log *zap.Logger, reg prometheus.Registerer, opts ...HandlerOption) (*Handler, error) {
	if log == nil {
		log = zap.NewNop()
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	h := &Handler{ledger: New(pool, log), log: log, m: m}
	for _, opt := range opts {
		opt(h)
	}
	return h, nil
}

// Ledger returns the Ledger the handler posts to.
func (h *Handler) Ledger() *Ledger { return h.ledger }

// Mount adds the routes to api (/api/v1) and admin (/admin/v1), each with
// its policy: the user's own credits for user tokens, a user's credits for
// services (credits:charge to read and spend, credits:grant to mint), and
// everything, refunds and adjustments included, for admins.
func (h *Handler) Mount(api, admin *authn.Router) {
	own := func(scope string) authn.Policy { return authn.Policy{Callers: authn.User, Scopes: []string{scope}} }
	api.HandleFunc(http.MethodGet, "/credits", own(ScopeCreditsRead), h.ownBalance)
	api.HandleFunc(http.MethodGet, "/credits/transactions", own(ScopeCreditsRead), h.ownHistory)
	api.HandleFunc(http.MethodPost, "/credits/spend", own(ScopeCreditsSpend), h.ownSpend)

	charge := authn.Policy{Callers: authn.Service | authn.Admin, Scopes: []string{ScopeCreditsCharge}}
	mint := authn.Policy{Callers: authn.Service | authn.Admin, Scopes: []string{ScopeCreditsGrant}}
	api.HandleFunc(http.MethodGet, "/users/{id}/credits", charge, h.forUser(h.balance))
	api.HandleFunc(http.MethodGet, "/users/{id}/credits/transactions", charge, h.forUser(h.history))
	api.HandleFunc(http.MethodPost, "/users/{id}/credits/spend", charge, h.forUser(h.spend))
	api.HandleFunc(http.MethodPost, "/users/{id}/credits/grant", mint, h.forUser(h.grant))

	adm := authn.Policy{Callers: authn.Admin}
	admin.HandleFunc(http.MethodGet, "/users/{id}/credits", adm, h.forUser(h.balance))
	admin.HandleFunc(http.MethodGet, "/users/{id}/credits/transactions", adm, h.forUser(h.history))
	admin.HandleFunc(http.MethodPost, "/users/{id}/credits/grant", adm, h.forUser(h.grant))
	admin.HandleFunc(http.MethodPost, "/users/{id}/credits/refund", adm, h.forUser(h.refund))
	admin.HandleFunc(http.MethodPost, "/users/{id}/credits/adjust", adm, h.forUser(h.adjust))
	admin.HandleFunc(http.MethodGet, "/ledger/verify", adm, h.verify)
}

// target is whose account a request acts on, as whom, and through which
// client.
type target struct {
	userID   string
	actor    Actor
	clientID string
}

type targetHandler func(w http.ResponseWriter, r *http.Request, t target)

// --- /api/v1/credits…: the token's own user -------------------------------
// The route policy (Mount) decided who may call; these pick the account.

func (h *Handler) ownTarget(r *http.Request) target {
	p := authn.FromContext(r.Context())
	return target{userID: p.UserID, actor: Actor{Type: ActorUser, ID: p.UserID}, clientID: p.ClientID}
}

func (h *Handler) ownBalance(w http.ResponseWriter, r *http.Request) { h.balance(w, r, h.ownTarget(r)) }
func (h *Handler) ownHistory(w http.ResponseWriter, r *http.Request) { h.history(w, r, h.ownTarget(r)) }
func (h *Handler) ownSpend(w http.ResponseWriter, r *http.Request)   { h.spend(w, r, h.ownTarget(r)) }

// --- /users/{id}/credits…: services and admins ----------------------------

// forUser acts on the user named in the path, as the caller.
func (h *Handler) forUser(next targetHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p := authn.FromContext(r.Context())
		next(w, r, target{userID: mux.Vars(r)["id"], actor: actorOf(p), clientID: p.ClientID})
	}
}

// actorOf names who is acting for a service or admin request.
func actorOf(p *authn.Principal) Actor {
	switch {
	case authn.IsAdmin(p) && p.IsUser():
		return Actor{Type: ActorAdmin, ID: p.UserID}
	case authn.IsAdmin(p):
		// A client token acting through its admin scope.
		return Actor{Type: ActorAdmin, ID: p.ClientID}
	default:
		return Actor{Type: ActorClient, ID: p.ClientID}
	}
}

func (h *Handler) verify(w http.ResponseWriter, r *http.Request) {
	rep, err := h.ledger.Verify(r.Context())
	if err != nil {
		problem.Write(w, r, err)
		return
	}
	if !rep.OK() {
		h.log.Error("ledger verification failed", zap.Int("problems", len(rep.Problems)), zap.String("first", rep.First().String()))
	}
	problem.WriteJSON(w, http.StatusOK, rep)
}

// --- the operations, once authorised ---------------------------------------

func (h *Handler) balance(w http.ResponseWriter, r *http.Request, t target) {
	bal, err := h.ledger.Balance(r.Context(), t.userID)
	if err != nil {
		problem.Write(w, r, toProblem(err))
		return
	}
	problem.WriteJSON(w, http.StatusOK, map[string]int64{"balance": bal})
}

func (h *Handler) history(w http.ResponseWriter, r *http.Request, t target) {
	q := r.URL.Query()
	p := Page{Cursor: q.Get("cursor"), Kind: Kind(q.Get("kind"))}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			problem.Write(w, r, problem.Invalid("limit", "must be an integer between 1 and "+strconv.Itoa(MaxPageSize)))
			return
		}
		p.Limit = n
	}
	hist, err := h.ledger.List(r.Context(), t.userID, p)
	if err != nil {
		problem.Write(w, r, toProblem(err))
		return
	}
	problem.WriteJSON(w, http.StatusOK, hist)
}

func (h *Handler) spend(w http.ResponseWriter, r *http.Request, t target) {
	var body postingBody
	p, ok := decodePosting(w, r, &body, &body, t)
	if !ok {
		return
	}
	start := time.Now()
	res, err := h.charge(r.Context(), t, p)
	outcome := "ok"
	if err != nil {
		outcome = failureCode(err)
		if outcome == "" {
			outcome = "error"
		}
	}
	h.m.spendLatency.WithLabelValues(outcome).Observe(time.Since(start).Seconds())
	h.respond(w, r, KindSpend, Debit, res, err)
}

// charge spends p: a service's charge within the caps of its client, any
// other caller's spend as asked.
func (h *Handler) charge(ctx context.Context, t target, p Posting) (Result, error) {
	if t.actor.Type != ActorClient || h.caps == nil {
		return h.ledger.Spend(ctx, p)
	}
	caps, err := h.caps.ChargeCaps(ctx, t.clientID)
	if err != nil {
		return Result{}, fmt.Errorf("ledger: charge caps of client %q: %w", t.clientID, err)
	}
	return h.ledger.Charge(ctx, p, caps)
}

func (h *Handler) grant(w http.ResponseWriter, r *http.Request, t target) {
	var body postingBody
	p, ok := decodePosting(w, r, &body, &body, t)
	if !ok {
		return
	}
	res, err := h.ledger.Grant(r.Context(), p)
	h.respond(w, r, KindGrant, Credit, res, err)
}

func (h *Handler) refund(w http.ResponseWriter, r *http.Request, t target) {
	var body refundBody
	p, ok := decodePosting(w, r, &body, &body.postingBody, t)
	if !ok {
		return
	}
	if body.SpendID == "" {
		problem.Write(w, r, problem.Invalid("spend_id", "the id of the spend to refund is required"))
		return
	}
	res, err := h.ledger.Refund(r.Context(), RefundPosting{Posting: p, SpendID: body.SpendID})
	h.respond(w, r, KindRefund, Credit, res, err)
}

func (h *Handler) adjust(w http.ResponseWriter, r *http.Request, t target) {
	var body adjustBody
	p, ok := decodePosting(w, r, &body, &body.postingBody, t)
	if !ok {
		return
	}
	dir := Direction(body.Direction)
	res, err := h.ledger.Adjust(r.Context(), AdjustPosting{Posting: p, Direction: dir, Reason: body.Reason})
	h.respond(w, r, KindAdjust, dir, res, err)
}

// transactionResponse is a posting's answer: the transaction, the user's
// balance now, and whether this was a replay of an earlier request.
type transactionResponse struct {
	Transaction
	Balance  int64 `json:"balance"`
	Replayed bool  `json:"replayed"`
}

func (h *Handler) respond(w http.ResponseWriter, r *http.Request, kind Kind, dir Direction, res Result, err error) {
	h.m.observe(kind, dir, res, err)
	if err != nil {
		problem.Write(w, r, toProblem(err))
		return
	}
	status := http.StatusCreated
	if res.Replayed {
		status = http.StatusOK
	}
	problem.WriteJSON(w, status, transactionResponse{Transaction: res.Transaction, Balance: res.Balance, Replayed: res.Replayed})
}

// originOf is where a request came from, for the transaction and its audit.
func originOf(r *http.Request, t target) Origin {
	e := audit.Event{}.FromRequest(r)
	return Origin{Actor: t.actor, ClientID: t.clientID, RequestID: e.RequestID, IP: e.IP, UserAgent: e.UserAgent}
}
