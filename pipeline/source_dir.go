package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/styleproxy/styleproxy/imaging"
)

// DirSource serves images from a local folder. Every access goes through an os.Root, so no path,
// however it is spelt, and no symbolic link can reach a file outside the folder: such paths are
// refused with a ForbiddenError (403). Symbolic links inside the folder work if they are relative
// (os.Root refuses absolute link targets).
//
// Versions are the file's size and modification time (nanoseconds): cheap (one stat a request,
// so a cache hit never reads the file) and changed by any ordinary rewrite of the file. A rewrite
// that keeps both the size and the modification time is not noticed.
type DirSource struct {
	dir  string
	root *os.Root
}

// NewDirSource opens dir (which must exist and be a folder) as a Source. The folder is held open:
// if it is renamed, the source follows it.
func NewDirSource(dir string) (*DirSource, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("plugin: source folder %s: %w", dir, err)
	}
	root, err := os.OpenRoot(abs)
	if err != nil {
		return nil, fmt.Errorf("plugin: source folder: %w", err)
	}
	return &DirSource{dir: abs, root: root}, nil
}

// ID returns "dir:" and the folder's absolute path.
func (s *DirSource) ID() string { return "dir:" + s.dir }

// Dir returns the folder's absolute path.
func (s *DirSource) Dir() string { return s.dir }

// Close releases the folder.
func (s *DirSource) Close() error { return s.root.Close() }

func fileVersion(fi fs.FileInfo) string {
	return strconv.FormatInt(fi.Size(), 10) + "-" + strconv.FormatInt(fi.ModTime().UnixNano(), 10)
}

// dirError classifies an os.Root error: missing files and non-folders on the way are 404,
// escapes (which os.Root reports as a non-errno error) and permission errors are 403.
func (s *DirSource) dirError(path string, err error) error {
	var errno syscall.Errno
	switch {
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, syscall.ENOTDIR), errors.Is(err, syscall.ENAMETOOLONG):
		return notFound(path)
	case errors.Is(err, fs.ErrPermission):
		return &ForbiddenError{Reason: fmt.Sprintf("source image %q is not readable", path)}
	case !errors.As(err, &errno):
		// os.Root's "path escapes from parent": a symbolic link out of the folder.
		return &ForbiddenError{Reason: fmt.Sprintf("source path %q leads outside the source folder", path)}
	}
	return fmt.Errorf("plugin: source folder: %w", err)
}

// hidden reports whether a path names a dotfile or passes through a dot-folder (.git, .env):
// such files are never served, and answer as missing rather than betray that they exist.
func hidden(path string) bool {
	for _, seg := range strings.Split(path, "/") {
		if strings.HasPrefix(seg, ".") {
			return true
		}
	}
	return false
}

// Stat returns the file's version.
func (s *DirSource) Stat(_ context.Context, path string) (string, error) {
	if hidden(path) {
		return "", notFound(path)
	}
	fi, err := s.root.Stat(path)
	if err != nil {
		return "", s.dirError(path, err)
	}
	if !fi.Mode().IsRegular() {
		return "", notFound(path)
	}
	return fileVersion(fi), nil
}

// Fetch reads the file.
func (s *DirSource) Fetch(_ context.Context, path string, maxBytes int64) ([]byte, string, error) {
	if hidden(path) {
		return nil, "", notFound(path)
	}
	f, err := s.root.Open(path)
	if err != nil {
		return nil, "", s.dirError(path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, "", fmt.Errorf("plugin: source folder: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, "", notFound(path)
	}
	if maxBytes > 0 && fi.Size() > maxBytes {
		return nil, "", fmt.Errorf("%w: source image is %d bytes, over the limit of %d bytes", imaging.ErrTooLarge, fi.Size(), maxBytes)
	}
	data, err := readLimited(f, maxBytes)
	if err != nil {
		return nil, "", err
	}
	return data, fileVersion(fi), nil
}
