package reliability

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"
)

// Outcome is one request the load sent.
type Outcome struct {
	Op         string // "token", "login", "spend", "register", …
	Server     string // which replica answered
	Status     int    // 0 when Err is set
	Err        string // transport error
	Start, End time.Time
	Ref        string // spend reference or registered email
	User       string // user id of a spend
	Body       string // first bytes of an error answer
}

// Recorder collects Outcomes from many goroutines.
type Recorder struct {
	mu  sync.Mutex
	all []Outcome
}

// Add records o.
func (r *Recorder) Add(o Outcome) {
	r.mu.Lock()
	r.all = append(r.all, o)
	r.mu.Unlock()
}

// Record turns an Answer into an Outcome and records it.
func (r *Recorder) Record(op, server string, start time.Time, a Answer, ref, user string) Outcome {
	o := Outcome{Op: op, Server: server, Status: a.Status, Start: start, End: time.Now(), Ref: ref, User: user}
	if a.Err != nil {
		o.Err, o.Status = a.Err.Error(), 0
	} else if !a.OK() {
		o.Body = string(a.Body)
		if len(o.Body) > 200 {
			o.Body = o.Body[:200]
		}
	}
	r.Add(o)
	return o
}

// All returns a copy of everything recorded.
func (r *Recorder) All() []Outcome {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.all)
}

// Report is one scenario's result: one row of the reliability table.
type Report struct {
	Name      string
	Duration  time.Duration
	Sent      int
	S2xx      int
	S4xx      int
	S5xx      int
	NetErr    int // transport errors (connection refused/reset: the process was down)
	Faults    int // faults injected
	Ledger    string
	Queued    int // outbox rows written
	Delivered int // outbox rows delivered (distinct)
	Dups      int // deliveries beyond the first
	Notes     []string
	Problems  []string // broken promises; a scenario passes when empty
}

// Count adds outcomes to the request columns.
func (r *Report) Count(outs []Outcome) {
	for _, o := range outs {
		r.Sent++
		switch {
		case o.Status == 0:
			r.NetErr++
		case o.Status < 300:
			r.S2xx++
		case o.Status < 500:
			r.S4xx++
		default:
			r.S5xx++
		}
	}
}

// Problem records a broken promise.
func (r *Report) Problem(format string, args ...any) {
	r.Problems = append(r.Problems, fmt.Sprintf(format, args...))
}

// Note records a measurement worth reading.
func (r *Report) Note(format string, args ...any) {
	r.Notes = append(r.Notes, fmt.Sprintf(format, args...))
}

// WriteTable prints reports as the reliability table (Markdown).
func WriteTable(w io.Writer, reports []*Report) {
	tw := tabwriter.NewWriter(w, 0, 4, 1, ' ', tabwriter.Debug)
	fmt.Fprintln(tw, "| scenario\t time\t sent\t 2xx\t 4xx\t 5xx\t net err\t faults\t ledger verify\t outbox queued\t delivered\t duplicated\t result\t")
	fmt.Fprintln(tw, "|---\t---\t---\t---\t---\t---\t---\t---\t---\t---\t---\t---\t---\t")
	for _, r := range reports {
		res := "ok"
		if len(r.Problems) > 0 {
			res = fmt.Sprintf("%d problem(s)", len(r.Problems))
		}
		fmt.Fprintf(tw, "| %s\t %s\t %d\t %d\t %d\t %d\t %d\t %d\t %s\t %d\t %d\t %d\t %s\t\n", r.Name, r.Duration.Round(time.Second),
			r.Sent, r.S2xx, r.S4xx, r.S5xx, r.NetErr, r.Faults, r.Ledger, r.Queued, r.Delivered, r.Dups, res)
	}
	tw.Flush()
	for _, r := range reports {
		for _, n := range r.Notes {
			fmt.Fprintf(w, "- %s: %s\n", r.Name, n)
		}
		for _, p := range r.Problems {
			fmt.Fprintf(w, "- %s: PROBLEM: %s\n", r.Name, p)
		}
	}
}

// String is the report as a short text, for test logs.
func (r *Report) String() string {
	var b strings.Builder
	WriteTable(&b, []*Report{r})
	return b.String()
}
