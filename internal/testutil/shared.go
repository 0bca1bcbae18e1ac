package testutil

import (
	"os"
	"path/filepath"
	"testing"
)

// SharedEnv names a folder holding the shared test data, overriding the search.
const SharedEnv = "STYLEPROXY_SHARED"

// RepoRoot is the repository's root: the nearest folder above the test's working directory
// holding go.mod.
func RepoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d
		}
		if filepath.Dir(d) == d {
			t.Fatalf("no go.mod above %s", dir)
		}
	}
}

// Shared returns the absolute path of parts inside the shared test data (weights, images,
// golden values), failing the test if it is missing: a test must not skip silently. The data is
// $STYLEPROXY_SHARED, else shared/ beside the repository (a plain checkout), else shared/ or
// .devshared/ inside it (a copy carried to another machine).
func Shared(t testing.TB, parts ...string) string {
	t.Helper()
	root := RepoRoot(t)
	var dirs []string
	if d := os.Getenv(SharedEnv); d != "" {
		dirs = append(dirs, d)
	}
	dirs = append(dirs, filepath.Join(root, "..", "shared"), filepath.Join(root, "shared"), filepath.Join(root, ".devshared"))
	for _, d := range dirs {
		if fi, err := os.Stat(filepath.Join(d, "images")); err == nil && fi.IsDir() {
			p, err := filepath.Abs(filepath.Join(append([]string{d}, parts...)...))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(p); err != nil {
				t.Fatalf("shared test data: %v", err)
			}
			return p
		}
	}
	t.Fatalf("shared test data not found in %v (set %s to its folder)", dirs, SharedEnv)
	return ""
}

// ReadShared returns the contents of a shared file.
func ReadShared(t testing.TB, parts ...string) []byte {
	t.Helper()
	b, err := os.ReadFile(Shared(t, parts...))
	if err != nil {
		t.Fatal(err)
	}
	return b
}
