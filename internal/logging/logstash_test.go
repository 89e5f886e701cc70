package logging_test

import (
	"bufio"
	"encoding/json"
	"net"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/authd/authd/internal/logging"
)

func TestLogstashSink_DeliversJSONLines(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	lines := make(chan map[string]any, 16)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		sc := bufio.NewScanner(c)
		for sc.Scan() {
			var m map[string]any
			if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
				t.Errorf("not a JSON line: %q", sc.Text())
				continue
			}
			lines <- m
		}
	}()
	sink := logging.NewLogstashSink(ln.Addr().String(), 0)
	defer sink.Close()
	log, err := logging.New(logging.Options{Format: "json", Level: "info", Service: "authd", Env: "test", Logstash: sink})
	if err != nil {
		t.Fatal(err)
	}
	log.Info("request", zap.String("request_id", "r1"), zap.Int("status", 200))
	select {
	case m := <-lines:
		for k, want := range map[string]any{"message": "request", "request_id": "r1", "service": "authd", "env": "test", "status": float64(200)} {
			if m[k] != want {
				t.Errorf("%s = %v, want %v (line %v)", k, m[k], want, m)
			}
		}
		if m["host"] == "" || m["@timestamp"] == nil {
			t.Errorf("missing host or @timestamp: %v", m)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no line reached the listener")
	}
}

func TestLogstashSink_NeverBlocksAndCountsDrops(t *testing.T) {
	// A port nothing listens on: every line must be dropped and counted, and
	// writing must not block.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	sink := logging.NewLogstashSink(addr, 16)
	log, _ := logging.New(logging.Options{Format: "json", Level: "info", Logstash: sink})
	start := time.Now()
	const n = 10000
	for i := 0; i < n; i++ {
		log.Info("line", zap.Int("i", i))
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("logging %d lines took %s: the sink blocks", n, d)
	}
	sink.Close()
	if got := sink.Dropped() + sink.Sent(); got != n {
		t.Fatalf("dropped %d + sent %d = %d, want every one of %d lines accounted for", sink.Dropped(), sink.Sent(), got, n)
	}
	if sink.Dropped() < n-16-1 {
		t.Fatalf("dropped = %d; with no listener nearly all %d lines must be dropped", sink.Dropped(), n)
	}
}
