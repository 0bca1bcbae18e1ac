package styles

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/styleproxy/styleproxy/internal/atomicfile"
)

// index is index.json.
type index struct {
	Format int               `json:"format"`
	Styles map[string]string `json:"styles"` // name -> version
}

// errBadIndex marks an index.json that exists but cannot be used.
var errBadIndex = errors.New("damaged index")

// readIndex reads DIR/styles/index.json; a missing file is an empty index (and exists=false).
func readIndex(root string) (idx map[string]string, exists bool, err error) {
	b, err := os.ReadFile(filepath.Join(root, indexFile))
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]string{}, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	var x index
	if err := json.Unmarshal(b, &x); err != nil {
		return nil, true, fmt.Errorf("%w: %s: %v", errBadIndex, indexFile, err)
	}
	if x.Format != storeFormat {
		return nil, true, fmt.Errorf("%w: %s: format %d, want %d", errBadIndex, indexFile, x.Format, storeFormat)
	}
	if x.Styles == nil {
		x.Styles = map[string]string{}
	}
	for name, v := range x.Styles {
		if !NamePattern.MatchString(name) || !VersionPattern.MatchString(v) {
			return nil, true, fmt.Errorf("%w: %s: bad entry %q: %q", errBadIndex, indexFile, name, v)
		}
	}
	return x.Styles, true, nil
}

// writeIndex replaces index.json atomically and durably: temp file, fsync, rename, fsync of the
// folder.
func writeIndex(root string, idx map[string]string) error {
	b, err := json.MarshalIndent(index{Format: storeFormat, Styles: idx}, "", "  ")
	if err != nil {
		return err
	}
	f, err := atomicfile.Create(filepath.Join(root, indexFile))
	if err != nil {
		return fmt.Errorf("styles: write index: %w", err)
	}
	defer f.Cleanup()
	if _, err := f.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("styles: write index: %w", err)
	}
	step("index-staged")
	if err := f.CloseAtomicallyReplace(); err != nil {
		return fmt.Errorf("styles: write index: %w", err)
	}
	return syncDir(root)
}

// statKey identifies one state of index.json: it is replaced by rename on every write, so any
// write changes the inode as well as the size or time.
type statKey struct {
	exists   bool
	dev, ino uint64
	size     int64
	mtime    int64
}

func statIndex(root string) (statKey, error) {
	fi, err := os.Stat(filepath.Join(root, indexFile))
	if errors.Is(err, fs.ErrNotExist) {
		return statKey{}, nil
	}
	if err != nil {
		return statKey{}, err
	}
	k := statKey{exists: true, size: fi.Size(), mtime: fi.ModTime().UnixNano()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		k.dev, k.ino = uint64(st.Dev), uint64(st.Ino) //nolint:unconvert // int32 on some systems
	}
	return k, nil
}
