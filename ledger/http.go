package ledger

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/mux"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/authd/authd/internal/audit"
	"github.com/authd/authd/internal/authn"
	"github.com/authd/authd/internal/problem"
)

// Scopes the credit endpoints check.
const (
	ScopeCreditsRead  = "credits:read"
	ScopeCreditsSpend = "credits:spend"
	ScopeCreditsAdmin = "credits:admin"
	// ScopeAdmin is the scope of the admin API (with role RoleAdmin for users).
	ScopeAdmin = "admin"
	RoleAdmin  = "admin"
)

// isService reports whether p may act on any user's credits through
// /api/v1/users/{id}/credits…: a client-only token with credits:admin, or an admin.
func isService(p *authn.Principal) bool {
	return (!p.IsUser() && p.HasScope(ScopeCreditsAdmin)) || authn.IsAdmin(p)
}

// Handler serves the credit endpoints of the user, service and admin APIs.
type Handler struct {
	ledger *Ledger
	log    *zap.Logger
	m      *metrics
}

// NewHandler returns a Handler over pool, registering its metrics with reg
// (nil: unregistered). It fails only if reg already holds the metrics.
func NewHandler(pool *pgxpool.Pool, log *zap.Logger, reg prometheus.Registerer) (*Handler, error) {
	if log == nil {
		log = zap.NewNop()
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	return &Handler{ledger: New(pool, log), log: log, m: m}, nil
}

// Ledger returns the Ledger the handler posts to.
func (h *Handler) Ledger() *Ledger { return h.ledger }

// Mount adds the routes to api (/api/v1) and admin (/admin/v1); both must
// already be behind authn.Require.
func (h *Handler) Mount(api, admin *mux.Router) {
	api.HandleFunc("/credits", h.ownBalance).Methods(http.MethodGet)
	api.HandleFunc("/credits/transactions", h.ownHistory).Methods(http.MethodGet)
	api.HandleFunc("/credits/spend", h.ownSpend).Methods(http.MethodPost)

	api.HandleFunc("/users/{id}/credits", h.serviceBalance).Methods(http.MethodGet)
	api.HandleFunc("/users/{id}/credits/transactions", h.serviceHistory).Methods(http.MethodGet)
	api.HandleFunc("/users/{id}/credits/spend", h.serviceSpend).Methods(http.MethodPost)
	api.HandleFunc("/users/{id}/credits/grant", h.serviceGrant).Methods(http.MethodPost)

	admin.HandleFunc("/users/{id}/credits", h.adminOnly(h.balance)).Methods(http.MethodGet)
	admin.HandleFunc("/users/{id}/credits/transactions", h.adminOnly(h.history)).Methods(http.MethodGet)
	admin.HandleFunc("/users/{id}/credits/grant", h.adminOnly(h.grant)).Methods(http.MethodPost)
	admin.HandleFunc("/users/{id}/credits/refund", h.adminOnly(h.refund)).Methods(http.MethodPost)
	admin.HandleFunc("/users/{id}/credits/adjust", h.adminOnly(h.adjust)).Methods(http.MethodPost)
	admin.HandleFunc("/ledger/verify", h.verify).Methods(http.MethodGet)
}

// target is whose account a request acts on, and as whom.
type target struct {
	userID string
	actor  Actor
}

type targetHandler func(w http.ResponseWriter, r *http.Request, t target)

// --- /api/v1/credits…: the token's own user -------------------------------

func (h *Handler) own(w http.ResponseWriter, r *http.Request, scope string) (target, bool) {
	p := authn.FromContext(r.Context())
	if p == nil || !p.IsUser() || !p.HasScope(scope) {
		authn.Forbidden(w, r, scope)
		return target{}, false
	}
	return target{userID: p.UserID, actor: Actor{Type: ActorUser, ID: p.UserID}}, true
}

func (h *Handler) ownBalance(w http.ResponseWriter, r *http.Request) {
	if t, ok := h.own(w, r, ScopeCreditsRead); ok {
		h.balance(w, r, t)
	}
}

func (h *Handler) ownHistory(w http.ResponseWriter, r *http.Request) {
	if t, ok := h.own(w, r, ScopeCreditsRead); ok {
		h.history(w, r, t)
	}
}

func (h *Handler) ownSpend(w http.ResponseWriter, r *http.Request) {
	if t, ok := h.own(w, r, ScopeCreditsSpend); ok {
		h.spend(w, r, t)
	}
}

// --- /api/v1/users/{id}/credits…: services (and a user on their own id) ----

// service authorises a request on /users/{id}/credits…. A user's own id is
// allowed with ownScope (""= never); anyone else needs isService.
func (h *Handler) service(w http.ResponseWriter, r *http.Request, ownScope string) (target, bool) {
	p := authn.FromContext(r.Context())
	id := mux.Vars(r)["id"]
	switch {
	case p == nil:
		authn.Forbidden(w, r, "")
	case isService(p):
		return target{userID: id, actor: actorOf(p)}, true
	case ownScope != "" && p.IsUser() && strings.EqualFold(p.UserID, id) && p.HasScope(ownScope):
		return target{userID: id, actor: Actor{Type: ActorUser, ID: p.UserID}}, true
	default:
		authn.Forbidden(w, r, ScopeCreditsAdmin)
	}
	return target{}, false
}

func (h *Handler) serviceBalance(w http.ResponseWriter, r *http.Request) {
	if t, ok := h.service(w, r, ScopeCreditsRead); ok {
		h.balance(w, r, t)
	}
}

func (h *Handler) serviceHistory(w http.ResponseWriter, r *http.Request) {
	if t, ok := h.service(w, r, ScopeCreditsRead); ok {
		h.history(w, r, t)
	}
}

func (h *Handler) serviceSpend(w http.ResponseWriter, r *http.Request) {
	if t, ok := h.service(w, r, ScopeCreditsSpend); ok {
		h.spend(w, r, t)
	}
}

func (h *Handler) serviceGrant(w http.ResponseWriter, r *http.Request) {
	if t, ok := h.service(w, r, ""); ok {
		h.grant(w, r, t)
	}
}

// actorOf names who is acting for a service or admin request.
func actorOf(p *authn.Principal) Actor {
	switch {
	case authn.IsAdmin(p) && p.IsUser():
		return Actor{Type: ActorAdmin, ID: p.UserID}
	case authn.IsAdmin(p) && !p.HasScope(ScopeCreditsAdmin):
		// A client token acting through its admin scope.
		return Actor{Type: ActorAdmin, ID: p.ClientID}
	default:
		return Actor{Type: ActorClient, ID: p.ClientID}
	}
}

// --- /admin/v1 -----------------------------------------------------------

func (h *Handler) adminOnly(next targetHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p := authn.FromContext(r.Context())
		if !authn.IsAdmin(p) {
			authn.Forbidden(w, r, ScopeAdmin)
			return
		}
		id := p.UserID
		if id == "" {
			id = p.ClientID
		}
		next(w, r, target{userID: mux.Vars(r)["id"], actor: Actor{Type: ActorAdmin, ID: id}})
	}
}

func (h *Handler) verify(w http.ResponseWriter, r *http.Request) {
	if !authn.IsAdmin(authn.FromContext(r.Context())) {
		authn.Forbidden(w, r, ScopeAdmin)
		return
	}
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
	res, err := h.ledger.Spend(r.Context(), p)
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
func originOf(r *http.Request, a Actor) Origin {
	e := audit.Event{}.FromRequest(r)
	return Origin{Actor: a, RequestID: e.RequestID, IP: e.IP, UserAgent: e.UserAgent}
}
