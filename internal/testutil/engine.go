package testutil

import (
	"os"
	"testing"
)

// Weights is where tests find the SqueezeNet weights: $STYLEPROXY_WEIGHTS, else the shared
// test data's weights folder.
func Weights(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("STYLEPROXY_WEIGHTS"); p != "" {
		return p
	}
	return Shared(t, "weights")
}

// Backend is the backend tests run on: $STYLEPROXY_BACKEND, else the pure-Go one, which runs
// everywhere.
func Backend() string {
	if b := os.Getenv("STYLEPROXY_BACKEND"); b != "" {
		return b
	}
	return "go"
}
