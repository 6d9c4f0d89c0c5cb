package svc

import (
	"fmt"
	"os"
	"sync"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// LogConfig selects the log format and level.
type LogConfig struct {
	LogFormat string `envconfig:"LOG_FORMAT" default:"auto" desc:"json, console, or auto (console on a terminal, JSON otherwise)"`
	LogLevel  string `envconfig:"LOG_LEVEL" default:"info" desc:"debug, info, warn or error"`
}

// Validate checks the format and level names.
func (c LogConfig) Validate() error {
	switch c.LogFormat {
	case "auto", "json", "console":
	default:
		return Invalid("LOG_FORMAT", c.LogFormat, "auto, json, console")
	}
	if _, err := zapcore.ParseLevel(c.LogLevel); err != nil {
		return Invalid("LOG_LEVEL", c.LogLevel, "debug, info, warn, error")
	}
	return nil
}

// NewLogger builds a zap logger: JSON in containers, readable console
// output on a terminal.
func NewLogger(c LogConfig) (*zap.Logger, error) {
	lvl, err := zapcore.ParseLevel(c.LogLevel)
	if err != nil {
		return nil, Invalid("LOG_LEVEL", c.LogLevel, "debug, info, warn, error")
	}
	format := c.LogFormat
	if format == "auto" || format == "" {
		format = "json"
		if isTerminal(os.Stderr) {
			format = "console"
		}
	}
	var zc zap.Config
	if format == "console" {
		zc = zap.NewDevelopmentConfig()
		zc.Development = false
		zc.EncoderConfig.EncodeTime = zapcore.TimeEncoderOfLayout("15:04:05.000")
		zc.DisableStacktrace = true
	} else {
		zc = zap.NewProductionConfig()
		zc.EncoderConfig.TimeKey = "ts"
		zc.EncoderConfig.EncodeTime = zapcore.ISO8601TimeEncoder
		zc.Sampling = nil // rate limiting is explicit, see Limiter
	}
	zc.Level = zap.NewAtomicLevelAt(lvl)
	zc.OutputPaths = []string{"stderr"}
	zc.ErrorOutputPaths = []string{"stderr"}
	l, err := zc.Build()
	if err != nil {
		return nil, fmt.Errorf("build logger: %w", err)
	}
	return l, nil
}

func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// Limiter rate-limits repeated log lines per key: at most one line per
// interval, reporting how many were suppressed in between.
type Limiter struct {
	every time.Duration
	mu    sync.Mutex
	last  map[string]limiterState
}

type limiterState struct {
	at         time.Time
	suppressed int
}

// NewLimiter returns a limiter that lets one line per key through every d.
func NewLimiter(d time.Duration) *Limiter {
	return &Limiter{every: d, last: make(map[string]limiterState)}
}

// Allow reports whether a line for key may be logged now, and how many
// were suppressed since the last one that was.
func (l *Limiter) Allow(key string) (ok bool, suppressed int) {
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	st := l.last[key]
	if !st.at.IsZero() && now.Sub(st.at) < l.every {
		st.suppressed++
		l.last[key] = st
		return false, 0
	}
	if len(l.last) > 10000 { // bound the key set; keys are caller-chosen
		clear(l.last)
	}
	l.last[key] = limiterState{at: now}
	return true, st.suppressed
}
