// Package atomicfile writes files whole or not at all, on github.com/google/renameio: the data
// goes to a temporary file beside the target, is fsynced, and is renamed over it, so a crash
// leaves the old file or the new one, never a torn one. Files get the mode os.Create gives
// (0666 less the umask), so what one user's command writes another user's server can read.
package atomicfile

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/google/renameio/v2"
)

// mode is a new file's mode before the umask, as os.Create.
const mode = 0o666

// WriteFile replaces path with data atomically. A file already at path keeps its mode.
func WriteFile(path string, data []byte) error {
	return renameio.WriteFile(path, data, mode, renameio.WithTempDir(filepath.Dir(path)))
}

// Create starts replacing path: write to the returned file, then CloseAtomicallyReplace puts it
// in place. Defer Cleanup, which removes the temporary file unless it was put in place.
func Create(path string) (*renameio.PendingFile, error) {
	return renameio.NewPendingFile(path, renameio.WithTempDir(filepath.Dir(path)), renameio.WithPermissions(mode))
}

// IsTemp reports whether name (in target's folder) is the temporary file of a replacement of
// target that never finished, such as one a crash interrupted: renameio names it "." + target +
// random digits. Sweeping these at start-up is the caller's job.
func IsTemp(name, target string) bool {
	digits, ok := strings.CutPrefix(name, "."+target)
	if !ok || digits == "" {
		return false
	}
	for _, c := range digits {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// SyncDir fsyncs a folder, making the renames and creations in it durable: a rename is only
// guaranteed to survive a power cut once its folder is synced.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, syscall.EINVAL) { // some file systems refuse
		return fmt.Errorf("fsync %s: %w", dir, err)
	}
	return nil
}
