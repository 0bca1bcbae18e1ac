package styles

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"sync"
)

// dirStore is the Store of a data directory (see layout.go for the layout).
//
// Writes (Put, Remove) stage a version directory under .tmp, fsync it, rename it into place and
// only then replace index.json atomically (temp file, fsync, rename, fsync of the folder). A crash
// or kill at any point therefore leaves the index naming either the old version or the new one,
// each complete; the next writer removes what the index does not name. Writers in any process
// serialise on an flock of DIR/styles/.lock, which readers take shared while they reload.
//
// Every style the index names is loaded into memory and checked (checksums of the targets and the
// thumbnail, the image's size); a damaged one is logged and skipped, never fatal. Reads answer
// from memory after one os.Stat of index.json: when another process has replaced the index, the
// store reloads the entries that changed, so a style added by `styleproxy styles add` is served
// by a running server without a restart.
type dirStore struct {
	root string // DIR/styles
	log  *slog.Logger
	lk   *fileLock

	// fileMu is held while this store holds (or waits for) the file lock; it also guards
	// damaged. Lock order: fileMu, then the file lock, then mu.
	fileMu  sync.Mutex
	damaged map[string]damageKey // name -> the version folder that failed to load

	mu      sync.RWMutex
	entries map[string]*entry
	key     statKey // index.json as of entries
}

// entry is one loaded version.
type entry struct {
	style *Style
	dir   string
	meta  meta
	thumb []byte
}

// openDir opens (creating it if needed) the store under the data directory dir, removing
// leftovers of interrupted writes. A damaged style is reported and skipped; a damaged index.json
// is reported and rebuilt from the version directories (the newest valid one of each name), so
// openDir fails only when the directory cannot be used at all.
func openDir(dir string, log *slog.Logger) (*dirStore, error) {
	root := filepath.Join(dir, "styles")
	if err := os.MkdirAll(filepath.Join(root, tmpDir), 0o755); err != nil {
		return nil, fmt.Errorf("styles: %w", err)
	}
	lk, err := openLock(root)
	if err != nil {
		return nil, err
	}
	l := &dirStore{root: root, log: log, lk: lk, damaged: map[string]damageKey{}, entries: map[string]*entry{}}
	if err := l.open(); err != nil {
		lk.close()
		return nil, err
	}
	return l, nil
}

func (l *dirStore) open() error {
	return l.writing(func(idx map[string]string) error {
		l.collect(idx)
		l.load(idx)
		return nil
	})
}

// Close releases the lock file.
func (l *dirStore) Close() error { return l.lk.close() }

// Get implements Store.
func (l *dirStore) Get(name string) (*Style, []byte, error) {
	e, err := l.lookup(name)
	if err != nil {
		return nil, nil, err
	}
	return e.style, e.thumb, nil
}

func (l *dirStore) lookup(name string) (*entry, error) {
	if err := CheckName(name); err != nil {
		return nil, err
	}
	if err := l.refresh(); err != nil {
		return nil, err
	}
	l.mu.RLock()
	e := l.entries[name]
	l.mu.RUnlock()
	if e == nil {
		return nil, notFound(name)
	}
	return e, nil
}

// List implements Store: every loadable style, sorted by name.
func (l *dirStore) List() ([]*Style, error) {
	if err := l.refresh(); err != nil {
		return nil, err
	}
	l.mu.RLock()
	out := make([]*Style, 0, len(l.entries))
	for _, e := range l.entries {
		out = append(out, e.style)
	}
	l.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Image implements Store.
func (l *dirStore) Image(name string) ([]byte, error) {
	for attempt := 0; ; attempt++ {
		e, err := l.lookup(name)
		if err != nil {
			return nil, err
		}
		b, err := os.ReadFile(filepath.Join(e.dir, e.meta.Image))
		if errors.Is(err, fs.ErrNotExist) && attempt < 3 {
			// Replaced or removed since the lookup: the index has moved on, look again.
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("styles: %s: %w", name, err)
		}
		if sum := sha256.Sum256(b); hex.EncodeToString(sum[:]) != e.meta.ImageSHA256 {
			return nil, fmt.Errorf("styles: %s: stored image is damaged (checksum mismatch)", name)
		}
		return b, nil
	}
}

// refresh reloads the index and the entries that changed when index.json is not the file the
// entries came from. The common case costs one os.Stat.
func (l *dirStore) refresh() error {
	key, err := statIndex(l.root)
	if err != nil {
		return fmt.Errorf("styles: %w", err)
	}
	if l.current(key) {
		return nil
	}
	l.fileMu.Lock()
	defer l.fileMu.Unlock()
	if err := l.lk.shared(); err != nil {
		return err
	}
	defer l.lk.unlock()
	if key, err = statIndex(l.root); err != nil {
		return fmt.Errorf("styles: %w", err)
	}
	if l.current(key) { // another goroutine reloaded meanwhile
		return nil
	}
	idx, _, err := readIndex(l.root)
	if err != nil {
		// Only a damaged disk gets here (the index is replaced atomically); the next writer or
		// Open rebuilds it. Keep serving what was loaded, and report once per state of the file.
		l.log.Error("styles: cannot read the index; keeping the styles loaded before", "error", err.Error())
		l.mu.Lock()
		l.key = key
		l.mu.Unlock()
		return nil
	}
	l.load(idx)
	return nil
}

func (l *dirStore) current(key statKey) bool {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return key == l.key
}

func (l *dirStore) loaded(name string) *entry {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.entries[name]
}
