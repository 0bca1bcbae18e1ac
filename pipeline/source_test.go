package pipeline

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/styleproxy/styleproxy/plugin"
)

func TestDirSourceHidesDotfiles(t *testing.T) {
	dir := t.TempDir()
	for _, p := range []string{"ok.jpg", ".env", "sub/.git/config", "sub/ok.png"} {
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s, err := NewDirSource(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, tc := range []struct {
		path   string
		hidden bool
	}{{"ok.jpg", false}, {"sub/ok.png", false}, {".env", true}, {"sub/.git/config", true}} {
		_, statErr := s.Stat(context.Background(), tc.path)
		_, _, fetchErr := s.Fetch(context.Background(), tc.path, 0)
		var nf *plugin.NotFoundError
		for _, err := range []error{statErr, fetchErr} {
			if tc.hidden != errors.As(err, &nf) || (!tc.hidden && err != nil) {
				t.Errorf("%s: %v, want hidden=%t to answer not found", tc.path, err, tc.hidden)
			}
		}
	}
}
