package atomicfile

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// withUmask runs the test under umask u (process-wide, so these tests are not parallel).
func withUmask(t *testing.T, u int) {
	old := syscall.Umask(u)
	t.Cleanup(func() { syscall.Umask(old) })
}

func TestWriteFileHonoursTheUmask(t *testing.T) {
	for _, tc := range []struct {
		umask int
		want  os.FileMode
	}{{0o022, 0o644}, {0o027, 0o640}, {0o002, 0o664}} {
		withUmask(t, tc.umask)
		dir := t.TempDir()
		written, streamed := filepath.Join(dir, "f.json"), filepath.Join(dir, "g.bin")
		if err := WriteFile(written, []byte("new")); err != nil {
			t.Fatal(err)
		}
		pf, err := Create(streamed)
		if err != nil {
			t.Fatal(err)
		}
		defer pf.Cleanup()
		pf.Write([]byte("streamed"))
		if err := pf.CloseAtomicallyReplace(); err != nil {
			t.Fatal(err)
		}
		for _, p := range []string{written, streamed} {
			st, err := os.Stat(p)
			if err != nil {
				t.Fatal(err)
			}
			if st.Mode().Perm() != tc.want {
				t.Errorf("umask %#o: %s has mode %v, want %v", tc.umask, filepath.Base(p), st.Mode().Perm(), tc.want)
			}
		}
	}
}

func TestWriteFileReplacesWholeAndLeavesNoTemporaryFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "index.json")
	if err := os.WriteFile(path, []byte("old contents"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(path, []byte("new")); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil || string(b) != "new" {
		t.Errorf("after WriteFile: %q, %v", b, err)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Errorf("an existing file's mode changed to %v", st.Mode().Perm())
	}
	// A write abandoned before CloseAtomicallyReplace leaves the old file and no temporary one;
	// until the clean-up (a crash skips it) IsTemp recognises the temporary file.
	pf, err := Create(path)
	if err != nil {
		t.Fatal(err)
	}
	pf.Write([]byte("half"))
	if tmp := filepath.Base(pf.Name()); !IsTemp(tmp, "index.json") || IsTemp(tmp, "index") || IsTemp("index.json", "index.json") || IsTemp(".index.json", "index.json") {
		t.Errorf("IsTemp does not tell the temporary file %s from others", tmp)
	}
	if err := pf.Cleanup(); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(dir)
	if b, _ := os.ReadFile(path); string(b) != "new" || len(entries) != 1 {
		t.Errorf("after an abandoned write: %q, folder %v", b, entries)
	}
	if err := SyncDir(dir); err != nil {
		t.Error(err)
	}
	if err := SyncDir(filepath.Join(dir, "missing")); err == nil {
		t.Error("SyncDir of a missing folder succeeded")
	}
}
