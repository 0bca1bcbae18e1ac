package testutil

import (
	"bytes"
	"image/png"
	"os"
	"path/filepath"
	"testing"
)

func TestSharedIsFoundFromTheRepositoryRoot(t *testing.T) {
	root := RepoRoot(t)
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil || filepath.Base(root) == "testutil" {
		t.Errorf("RepoRoot = %s", root)
	}
	if p := Shared(t, "images"); !filepath.IsAbs(p) {
		t.Errorf("Shared = %s, want an absolute path", p)
	}
	// The environment variable overrides the search.
	d := t.TempDir()
	os.MkdirAll(filepath.Join(d, "images"), 0o755)
	os.WriteFile(filepath.Join(d, "images", "x.png"), []byte("x"), 0o644)
	t.Setenv(SharedEnv, d)
	if p := Shared(t, "images", "x.png"); p != filepath.Join(d, "images", "x.png") {
		t.Errorf("with %s set: %s", SharedEnv, p)
	}
}

func TestBombPNGDeclaresItsSize(t *testing.T) {
	b := BombPNG(30000, 20000, 1)
	cfg, err := png.DecodeConfig(bytes.NewReader(b))
	if err != nil || cfg.Width != 30000 || cfg.Height != 20000 || len(b) > 1000 {
		t.Errorf("%d bytes declaring %dx%d (%v)", len(b), cfg.Width, cfg.Height, err)
	}
	// With every row present it is a valid image.
	if _, err := png.Decode(bytes.NewReader(BombPNG(64, 32, 32))); err != nil {
		t.Error(err)
	}
}
