// Package reliability tries hard to break authd's promises — nothing lost,
// nothing double-spent, no request that was accepted fails — by running the
// real `authd serve` binary against a real PostgreSQL and real peers (SMTP,
// webhook receiver, Logstash) and injecting faults: the database stopped,
// the process killed with SIGKILL, peers that refuse, hang or hang up,
// several replicas on one database, and rolling restarts under load.
//
// Each scenario is a function that takes the sizes to run at and returns a
// Report: what it sent, what came back, how many faults it injected, and a
// list of Problems (broken promises). The tests in this package run every
// scenario small and fail on any Problem; cmd/authd-soak runs them large and
// prints the Reports as the README's reliability table.
package reliability
