package styles

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/styleproxy/styleproxy/engine"
)

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
