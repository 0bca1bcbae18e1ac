package styles

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/styleproxy/styleproxy/engine"
	"github.com/styleproxy/styleproxy/internal/atomicfile"
)

// dirStore is the Store of a data directory (see store.go for the layout).
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

// testStep, when set (by tests), is called between the steps of a write, with the step's name:
// "staged" (version directory written under .tmp), "renamed" (moved into place), "index-staged"
// (the new index.json written to a temp file, not yet renamed), "indexed" (index.json replaced),
// "collected" (old versions removed).
var testStep func(step string)

func step(name string) {
	if testStep != nil {
		testStep(name)
	}
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
	l.fileMu.Lock()
	defer l.fileMu.Unlock()
	if err := l.lk.exclusive(); err != nil {
		return err
	}
	defer l.lk.unlock()
	idx, err := l.indexForWrite()
	if err != nil {
		return err
	}
	l.collect(idx)
	l.load(idx)
	return nil
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

// load makes idx the library's contents, reading from disk the versions not already loaded.
// The file lock (shared or exclusive) and fileMu must be held.
func (l *dirStore) load(idx map[string]string) {
	key, err := statIndex(l.root)
	if err != nil {
		l.log.Error("styles: stat index", "error", err.Error())
	}
	l.mu.RLock()
	old := l.entries
	l.mu.RUnlock()
	next := make(map[string]*entry, len(idx))
	for name, version := range idx {
		if e := old[name]; e != nil && e.style.Version == version {
			next[name] = e
			continue
		}
		dk := l.damageKey(name, version)
		if l.damaged[name] == dk {
			continue // reported already, and not rewritten since
		}
		e, err := l.loadEntry(name, version)
		if err != nil {
			l.log.Error("styles: skipping damaged style", "name", name, "version", version, "error", err.Error())
			l.damaged[name] = dk
			continue
		}
		delete(l.damaged, name)
		next[name] = e
	}
	for name, dk := range l.damaged {
		if idx[name] != dk.version {
			delete(l.damaged, name)
		}
	}
	l.mu.Lock()
	l.entries, l.key = next, key
	l.mu.Unlock()
}

// damageKey identifies a version folder that failed to load: it is tried again (and reported
// again) only once the index names another version or the folder is replaced, as a writer does
// when it registers the same version anew.
type damageKey struct {
	version string
	ino     uint64
}

func (l *dirStore) damageKey(name, version string) damageKey {
	k := damageKey{version: version}
	if fi, err := os.Stat(filepath.Join(l.root, name, version)); err == nil {
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			k.ino = uint64(st.Ino) //nolint:unconvert // not uint64 everywhere
		}
	}
	return k
}

// loadEntry reads and checks one version directory.
func (l *dirStore) loadEntry(name, version string) (*entry, error) {
	dir := filepath.Join(l.root, name, version)
	mb, err := os.ReadFile(filepath.Join(dir, metaFile))
	if err != nil {
		return nil, err
	}
	var m meta
	if err := json.Unmarshal(mb, &m); err != nil {
		return nil, fmt.Errorf("%s: %w", metaFile, err)
	}
	switch {
	case m.Format != storeFormat:
		return nil, fmt.Errorf("%s: format %d, want %d", metaFile, m.Format, storeFormat)
	case m.Name != name || m.Version != version:
		return nil, fmt.Errorf("%s: describes %s/%s", metaFile, m.Name, m.Version)
	case !strings.HasPrefix(m.Image, "image.") || filepath.Base(m.Image) != m.Image:
		return nil, fmt.Errorf("%s: bad image file name %q", metaFile, m.Image)
	}
	tb, err := os.ReadFile(filepath.Join(dir, targetsFile))
	if err != nil {
		return nil, err
	}
	targets, err := DecodeTargets(tb)
	if err != nil {
		return nil, err
	}
	thumb, err := os.ReadFile(filepath.Join(dir, thumbFile))
	if err != nil {
		return nil, err
	}
	if sum := sha256.Sum256(thumb); hex.EncodeToString(sum[:]) != m.ThumbSHA256 {
		return nil, fmt.Errorf("%s: checksum mismatch", thumbFile)
	}
	fi, err := os.Stat(filepath.Join(dir, m.Image))
	if err != nil {
		return nil, err
	}
	if fi.Size() != m.ImageBytes {
		return nil, fmt.Errorf("%s: %d bytes, want %d", m.Image, fi.Size(), m.ImageBytes)
	}
	if m.Engine != engine.Version {
		l.log.Warn("styles: style registered with another engine version; re-register it to recompute its targets",
			"name", name, "registered_with", m.Engine, "engine", engine.Version)
	}
	s := &Style{Name: m.Name, Version: m.Version, StyleSize: m.StyleSize, Preset: m.Preset, Weights: m.Weights,
		Created: m.Created, Targets: targets}
	return &entry{style: s, dir: dir, meta: m, thumb: thumb}, nil
}

// indexForWrite reads the index for a writer (the file lock held exclusively). A missing index
// with version directories present, or a damaged one, is rebuilt from the directories and written.
func (l *dirStore) indexForWrite() (map[string]string, error) {
	idx, exists, err := readIndex(l.root)
	if err == nil && exists {
		return idx, nil
	}
	if err != nil && !errors.Is(err, errBadIndex) {
		return nil, fmt.Errorf("styles: %w", err)
	}
	if err != nil {
		l.log.Error("styles: rebuilding the index from the style folders", "error", err.Error())
	}
	idx = l.scan()
	if len(idx) > 0 {
		l.log.Warn("styles: index rebuilt from the style folders", "styles", len(idx))
	}
	if err := writeIndex(l.root, idx); err != nil {
		return nil, err
	}
	return idx, nil
}

// scan finds, for each name, the most recently created valid version directory.
func (l *dirStore) scan() map[string]string {
	idx := map[string]string{}
	names, _ := os.ReadDir(l.root)
	for _, n := range names {
		if !n.IsDir() || !NamePattern.MatchString(n.Name()) {
			continue
		}
		versions, _ := os.ReadDir(filepath.Join(l.root, n.Name()))
		var best time.Time
		for _, v := range versions {
			if !v.IsDir() || !VersionPattern.MatchString(v.Name()) {
				continue
			}
			e, err := l.loadEntry(n.Name(), v.Name())
			if err != nil {
				l.log.Error("styles: skipping damaged style", "name", n.Name(), "version", v.Name(), "error", err.Error())
				continue
			}
			if _, ok := idx[n.Name()]; !ok || e.style.Created.After(best) {
				idx[n.Name()], best = v.Name(), e.style.Created
			}
		}
	}
	return idx
}

// collect removes what the index does not name: staging folders, old versions, removed styles.
// The file lock must be held exclusively.
func (l *dirStore) collect(idx map[string]string) {
	remove := func(p string) {
		if err := os.RemoveAll(p); err != nil {
			l.log.Warn("styles: cannot remove leftover", "path", p, "error", err.Error())
		}
	}
	if tmps, err := os.ReadDir(filepath.Join(l.root, tmpDir)); err == nil {
		for _, t := range tmps {
			remove(filepath.Join(l.root, tmpDir, t.Name()))
		}
	}
	names, _ := os.ReadDir(l.root)
	for _, n := range names {
		if atomicfile.IsTemp(n.Name(), indexFile) {
			remove(filepath.Join(l.root, n.Name())) // an index write that never got renamed
			continue
		}
		if !n.IsDir() || !NamePattern.MatchString(n.Name()) {
			continue
		}
		cur, ok := idx[n.Name()]
		if !ok {
			remove(filepath.Join(l.root, n.Name()))
			continue
		}
		versions, _ := os.ReadDir(filepath.Join(l.root, n.Name()))
		for _, v := range versions {
			if v.Name() != cur && VersionPattern.MatchString(v.Name()) {
				remove(filepath.Join(l.root, n.Name(), v.Name()))
			}
		}
	}
}

// Put implements Store.
func (l *dirStore) Put(r *Record, replace bool) (*Style, error) {
	name, version := r.Style.Name, r.Style.Version
	l.fileMu.Lock()
	defer l.fileMu.Unlock()
	if err := l.lk.exclusive(); err != nil {
		return nil, err
	}
	defer l.lk.unlock()
	idx, err := l.indexForWrite()
	if err != nil {
		return nil, err
	}
	cur, exists := idx[name]
	if exists && !replace {
		l.load(idx)
		return nil, fmt.Errorf("%w: %q", ErrExists, name)
	}
	if exists && cur == version {
		// The same image and settings as the current version: nothing to write, unless what is
		// on disk is damaged (checked there, not in memory), in which case it is written anew.
		if _, err := l.loadEntry(name, version); err == nil {
			l.load(idx)
			if e := l.loaded(name); e != nil && e.style.Version == version {
				return e.style, nil
			}
		}
	}

	targets, err := EncodeTargets(r.Style.Targets)
	if err != nil {
		return nil, err
	}
	imgSum, thumbSum := sha256.Sum256(r.Image), sha256.Sum256(r.Thumb)
	m := meta{
		Format: storeFormat, Name: name, Version: version, Engine: engine.Version,
		StyleSize: r.Style.StyleSize, Preset: r.Style.Preset, Weights: r.Style.Weights, Created: r.Style.Created,
		Image: "image" + r.ImageExt, ImageType: r.ImageType, ImageBytes: int64(len(r.Image)),
		ImageSHA256: hex.EncodeToString(imgSum[:]), Width: r.Width, Height: r.Height,
		ThumbSHA256: hex.EncodeToString(thumbSum[:]),
	}
	mb, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, err
	}

	// 1. Stage the version directory, every file fsynced, meta.json last.
	tmpRoot := filepath.Join(l.root, tmpDir)
	if err := os.MkdirAll(tmpRoot, 0o755); err != nil {
		return nil, fmt.Errorf("styles: %w", err)
	}
	stage, err := os.MkdirTemp(tmpRoot, name+"-"+version+"-")
	if err != nil {
		return nil, fmt.Errorf("styles: %w", err)
	}
	defer os.RemoveAll(stage) // nothing left there once renamed
	// MkdirTemp makes the folder private; the library's files are as readable as its folders.
	if err := os.Chmod(stage, 0o755); err != nil {
		return nil, fmt.Errorf("styles: %w", err)
	}
	for _, f := range []struct {
		name string
		data []byte
	}{{m.Image, r.Image}, {targetsFile, targets}, {thumbFile, r.Thumb}, {metaFile, append(mb, '\n')}} {
		if err := writeFileSync(filepath.Join(stage, f.name), f.data); err != nil {
			return nil, fmt.Errorf("styles: write %s: %w", f.name, err)
		}
	}
	if err := syncDir(stage); err != nil {
		return nil, err
	}
	step("staged")

	// 2. Move it into place.
	nameDir := filepath.Join(l.root, name)
	if err := os.Mkdir(nameDir, 0o755); err == nil {
		if err := syncDir(l.root); err != nil {
			return nil, err
		}
	} else if !errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("styles: %w", err)
	}
	vdir := filepath.Join(nameDir, version)
	if err := os.RemoveAll(vdir); err != nil { // an unindexed or damaged copy of this version
		return nil, fmt.Errorf("styles: %w", err)
	}
	if err := os.Rename(stage, vdir); err != nil {
		return nil, fmt.Errorf("styles: %w", err)
	}
	if err := syncDir(nameDir); err != nil {
		return nil, err
	}
	if err := syncDir(tmpRoot); err != nil {
		return nil, err
	}
	step("renamed")

	// 3. Point the index at it: from here on every reader sees the new version.
	idx[name] = version
	if err := writeIndex(l.root, idx); err != nil {
		return nil, err
	}
	step("indexed")

	// 4. Remove the version it replaces.
	l.collectName(name, version)
	step("collected")

	delete(l.damaged, name)
	l.load(idx)
	e := l.loaded(name)
	if e == nil || e.style.Version != version {
		return nil, fmt.Errorf("styles: %s: the version just written does not load back", name)
	}
	return e.style, nil
}

// collectName removes name's versions other than keep.
func (l *dirStore) collectName(name, keep string) {
	dir := filepath.Join(l.root, name)
	versions, _ := os.ReadDir(dir)
	for _, v := range versions {
		if v.Name() != keep && VersionPattern.MatchString(v.Name()) {
			if err := os.RemoveAll(filepath.Join(dir, v.Name())); err != nil {
				l.log.Warn("styles: cannot remove old version", "name", name, "version", v.Name(), "error", err.Error())
			}
		}
	}
}

func (l *dirStore) loaded(name string) *entry {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.entries[name]
}

// Remove implements Store.
func (l *dirStore) Remove(name string) error {
	if err := CheckName(name); err != nil {
		return err
	}
	l.fileMu.Lock()
	defer l.fileMu.Unlock()
	if err := l.lk.exclusive(); err != nil {
		return err
	}
	defer l.lk.unlock()
	idx, err := l.indexForWrite()
	if err != nil {
		return err
	}
	if _, ok := idx[name]; !ok {
		l.load(idx)
		return notFound(name)
	}
	delete(idx, name)
	if err := writeIndex(l.root, idx); err != nil {
		return err
	}
	step("indexed")
	if err := os.RemoveAll(filepath.Join(l.root, name)); err != nil {
		l.log.Warn("styles: cannot remove style folder", "name", name, "error", err.Error())
	} else if err := syncDir(l.root); err != nil {
		l.log.Warn("styles: fsync", "error", err.Error())
	}
	step("collected")
	l.load(idx)
	return nil
}
