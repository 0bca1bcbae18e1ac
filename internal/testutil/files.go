package testutil

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// CheckFileModes fails the test unless every file under dir has the mode os.Create gives under
// the process's umask (0666 less the umask), so files one user writes another can read.
func CheckFileModes(t *testing.T, paths ...string) {
	t.Helper()
	u := syscall.Umask(0)
	syscall.Umask(u)
	want := os.FileMode(0o666 &^ u)
	for _, p := range paths {
		err := filepath.WalkDir(p, func(path string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			fi, err := d.Info()
			if err != nil {
				return err
			}
			if fi.Mode().Perm() != want {
				t.Errorf("%s has mode %v, want %v (0666 less the umask %#o)", path, fi.Mode().Perm(), want, u)
			}
			return nil
		})
		if err != nil {
			t.Error(err)
		}
	}
}
