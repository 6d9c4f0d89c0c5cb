package svc

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

type testConfig struct {
	Base
	Period time.Duration `envconfig:"TESTSVC_PERIOD" default:"24h"`
	Name   string        `envconfig:"TESTSVC_NAME" required:"true"`
}

func (c *testConfig) Validate() error {
	if err := c.Base.Validate(); err != nil {
		return err
	}
	if c.Period <= 0 {
		return Invalid("TESTSVC_PERIOD", c.Period, "a duration > 0")
	}
	return nil
}

func (c *testConfig) OwnedPrefixes() []string { return []string{"TESTSVC_"} }

func TestLoad(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		wantErr error
		wantVar string // must appear in the error message
	}{
		{"ok", map[string]string{"TESTSVC_NAME": "x"}, nil, ""},
		{"missing required", map[string]string{}, ErrConfig, "TESTSVC_NAME"},
		{"unparsable duration", map[string]string{"TESTSVC_NAME": "x", "TESTSVC_PERIOD": "soon"}, ErrConfig, "TESTSVC_PERIOD"},
		{"validate range", map[string]string{"TESTSVC_NAME": "x", "TESTSVC_PERIOD": "-1s"}, ErrConfig, "TESTSVC_PERIOD"},
		{"typo under owned prefix", map[string]string{"TESTSVC_NAME": "x", "TESTSVC_PERIDO": "1h"}, ErrConfig, "TESTSVC_PERIDO"},
		{"bad log level", map[string]string{"TESTSVC_NAME": "x", "LOG_LEVEL": "loud"}, ErrConfig, "LOG_LEVEL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			var c testConfig
			err := Load(&c)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Load err = %v, want %v", err, tt.wantErr)
			}
			if err != nil && !strings.Contains(err.Error(), tt.wantVar) {
				t.Fatalf("error %q does not name %s", err, tt.wantVar)
			}
			if err != nil && strings.Contains(err.Error(), "\n") {
				t.Fatalf("error is not one line: %q", err)
			}
		})
	}
}

func TestVars(t *testing.T) {
	names := VarNames(&testConfig{})
	want := []string{"LOG_FORMAT", "LOG_LEVEL", "METRICS_ADDR", "SHUTDOWN_TIMEOUT", "TESTSVC_PERIOD", "TESTSVC_NAME"}
	if strings.Join(names, ",") != strings.Join(want, ",") {
		t.Fatalf("VarNames = %v, want %v", names, want)
	}
}

type defaultsConfig struct {
	Base
	Period  time.Duration `envconfig:"TESTDEF_PERIOD" default:"90s"`
	Name    string        `envconfig:"TESTDEF_NAME" default:"x"`
	On      bool          `envconfig:"TESTDEF_ON" default:"true"`
	Count   int32         `envconfig:"TESTDEF_COUNT" default:"-7"`
	Seed    uint64        `envconfig:"TESTDEF_SEED" default:"18446744073709551615"`
	Share   float64       `envconfig:"TESTDEF_SHARE" default:"0.5"`
	NoTag   int           `envconfig:"TESTDEF_NOTAG"`
	private int           `default:"3"` // not settable: left alone
}

func (c *defaultsConfig) Validate() error { return c.Base.Validate() }

// TestDefaults proves Defaults builds what Load builds from an empty
// environment, embedded structs included, and refuses a tag it cannot
// parse.
func TestDefaults(t *testing.T) {
	for _, name := range VarNames(&defaultsConfig{}) {
		t.Setenv(name, "") // restored at cleanup
		_ = os.Unsetenv(name)
	}
	var fromEnv, fromTags defaultsConfig
	if err := Load(&fromEnv); err != nil {
		t.Fatal(err)
	}
	if err := Defaults(&fromTags); err != nil {
		t.Fatal(err)
	}
	if fromTags != fromEnv {
		t.Fatalf("Defaults = %+v\nLoad    = %+v", fromTags, fromEnv)
	}
	if fromTags.Seed != 1<<64-1 || fromTags.Count != -7 || fromTags.private != 0 {
		t.Fatalf("Defaults = %+v", fromTags)
	}
	var bad struct {
		N int `default:"many"`
	}
	if err := Defaults(&bad); err == nil || !strings.Contains(err.Error(), "N") {
		t.Fatalf("bad tag: err = %v", err)
	}
	if err := Defaults(bad); err == nil {
		t.Fatal("a non-pointer was accepted")
	}
	if got := MustDefaults[defaultsConfig](); got != fromTags {
		t.Fatalf("MustDefaults = %+v, want %+v", got, fromTags)
	}
	defer func() {
		if r := recover(); r == nil || !strings.Contains(fmt.Sprint(r), "default tags") {
			t.Fatalf("MustDefaults of a bad tag: recovered %v, want a panic naming the default tags", r)
		}
	}()
	MustDefaults[struct {
		N int `default:"many"`
	}]()
}
