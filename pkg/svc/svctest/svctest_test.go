package svctest

import (
	"os"
	"testing"
)

type cfg struct {
	Level string `envconfig:"SVCTEST_LEVEL" default:"info"`
}

func (*cfg) Validate() error         { return nil }
func (*cfg) OwnedPrefixes() []string { return []string{"SVCTEST_"} }

func TestClearEnv(t *testing.T) {
	t.Setenv("SVCTEST_LEVEL", "debug")
	t.Setenv("SVCTEST_TYPO", "x")
	t.Setenv("OTHER_SVCTEST_VAR", "kept")
	t.Run("cleared", func(t *testing.T) {
		ClearEnv(t, &cfg{})
		for _, name := range []string{"SVCTEST_LEVEL", "SVCTEST_TYPO"} {
			if v, ok := os.LookupEnv(name); ok {
				t.Errorf("%s still set: %q", name, v)
			}
		}
		if os.Getenv("OTHER_SVCTEST_VAR") != "kept" {
			t.Error("a variable outside the config was unset")
		}
	})
	if os.Getenv("SVCTEST_LEVEL") != "debug" || os.Getenv("SVCTEST_TYPO") != "x" {
		t.Error("not restored after the subtest")
	}
}
