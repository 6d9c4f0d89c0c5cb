// Package svctest helps the tests of service configurations.
package svctest

import (
	"os"
	"strings"
	"testing"

	"github.com/depthcap/depthcap/pkg/svc"
)

// ClearEnv unsets, for the rest of the test, every environment variable
// cfg reads and every variable under the prefixes cfg owns (svc.Owner:
// svc.Load rejects unknown ones there), so that svc.Load sees the defaults
// plus what the test sets. t.Setenv restores them at cleanup; like it,
// ClearEnv cannot be used in parallel tests.
func ClearEnv(t testing.TB, cfg any) {
	t.Helper()
	known := map[string]bool{}
	for _, name := range svc.VarNames(cfg) {
		known[name] = true
	}
	var owned []string
	if o, ok := cfg.(svc.Owner); ok {
		owned = o.OwnedPrefixes()
	}
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if !known[name] && !hasPrefix(name, owned) {
			continue
		}
		t.Setenv(name, "") // records the value for the cleanup
		_ = os.Unsetenv(name)
	}
}

func hasPrefix(name string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}
