// Package testengine opens the real engine for tests, once per test binary, with the weights
// and backend testutil names (STYLEPROXY_WEIGHTS, STYLEPROXY_BACKEND). It is apart from testutil
// so that the engine's own tests, which cannot import it, can still use testutil.
package testengine

import (
	"sync"
	"testing"

	"github.com/styleproxy/styleproxy/engine"
	"github.com/styleproxy/styleproxy/internal/testutil"
	"github.com/styleproxy/styleproxy/weights"
)

var (
	once sync.Once
	eng  *engine.Engine
	err  error
)

// Open returns the test engine, failing the test if it cannot be opened.
func Open(t testing.TB) *engine.Engine {
	t.Helper()
	once.Do(func() {
		var path string
		if path, err = weights.Resolve(testutil.Weights(t)); err == nil {
			eng, _, err = engine.Open(path, testutil.Backend())
		}
	})
	if err != nil {
		t.Fatalf("test engine: %v", err)
	}
	return eng
}
