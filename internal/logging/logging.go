// Package logging builds authd's zap logger: JSON in production, console in
// development, and an optional Logstash TCP sink that never blocks.
package logging

import (
	"fmt"
	"os"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// Options selects the logger's shape.
type Options struct {
	Format   string // json | console
	Level    string // debug | info | warn | error
	Service  string // "authd"
	Env      string // development | production
	Logstash *LogstashSink
	// Output replaces stderr (tests capture logs with it). Output is
	// written once per entry; stderr is buffered (buffered.go: a line waits
	// at most FlushInterval, Warn and worse are written at once, Sync
	// writes everything).
	Output zapcore.WriteSyncer
}

// New returns the process logger writing to stderr and, if set, Logstash.
// Errors carry stack traces. Call Sync before the process exits.
func New(o Options) (*zap.Logger, error) {
	lvl, err := zapcore.ParseLevel(o.Level)
	if err != nil {
		return nil, fmt.Errorf("logging: level %q: %w", o.Level, err)
	}
	var enc zapcore.Encoder
	if o.Format == "console" {
		ec := zap.NewDevelopmentEncoderConfig()
		ec.EncodeLevel = zapcore.CapitalColorLevelEncoder
		enc = zapcore.NewConsoleEncoder(ec)
	} else {
		enc = zapcore.NewJSONEncoder(JSONEncoderConfig())
	}
	var core zapcore.Core
	if o.Output != nil {
		core = zapcore.NewCore(enc, o.Output, lvl)
	} else {
		bw := newBufferedWriter(zapcore.AddSync(os.Stderr), FlushInterval, BufferSize)
		core = flushOnWarn{Core: zapcore.NewCore(enc, bw, lvl), w: bw}
	}
	cores := []zapcore.Core{core}
	if o.Logstash != nil {
		host, _ := os.Hostname()
		ls := zapcore.NewCore(zapcore.NewJSONEncoder(JSONEncoderConfig()), o.Logstash, lvl).
			With([]zapcore.Field{zap.String("service", o.Service), zap.String("env", o.Env), zap.String("host", host)})
		cores = append(cores, ls)
	}
	return zap.New(zapcore.NewTee(cores...), zap.AddStacktrace(zapcore.ErrorLevel), zap.AddCaller()), nil
}

// JSONEncoderConfig is the JSON shape shared by stderr and Logstash: RFC 3339
// timestamps under @timestamp, as Logstash expects.
func JSONEncoderConfig() zapcore.EncoderConfig {
	ec := zap.NewProductionEncoderConfig()
	ec.TimeKey = "@timestamp"
	ec.EncodeTime = zapcore.RFC3339NanoTimeEncoder
	ec.MessageKey = "message"
	return ec
}
