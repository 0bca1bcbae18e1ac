package styles

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/styleproxy/styleproxy/engine"
	"github.com/styleproxy/styleproxy/internal/atomicfile"
)

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

// writing runs fn with the file lock held exclusively and the index as it is on disk (rebuilt
// first if it is damaged), so that writers in every process take turns.
func (l *dirStore) writing(fn func(idx map[string]string) error) error {
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
	return fn(idx)
}

// Put implements Store.
func (l *dirStore) Put(r *Record, replace bool) (s *Style, err error) {
	err = l.writing(func(idx map[string]string) error {
		s, err = l.put(idx, r, replace)
		return err
	})
	return s, err
}

func (l *dirStore) put(idx map[string]string, r *Record, replace bool) (*Style, error) {
	name, version := r.Style.Name, r.Style.Version
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

	// 1. Stage the version directory under .tmp.
	stage, err := l.stage(r)
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(stage) // nothing left there once renamed
	step("staged")

	// 2. Move it into place.
	if err := l.install(stage, name, version); err != nil {
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

// newMeta is the meta.json of the version r describes.
func newMeta(r *Record) meta {
	imgSum, thumbSum := sha256.Sum256(r.Image), sha256.Sum256(r.Thumb)
	return meta{
		Format: storeFormat, Name: r.Style.Name, Version: r.Style.Version, Engine: engine.Version,
		StyleSize: r.Style.StyleSize, Preset: r.Style.Preset, Weights: r.Style.Weights, Created: r.Style.Created,
		Image: "image" + r.ImageExt, ImageType: r.ImageType, ImageBytes: int64(len(r.Image)),
		ImageSHA256: hex.EncodeToString(imgSum[:]), Width: r.Width, Height: r.Height,
		ThumbSHA256: hex.EncodeToString(thumbSum[:]),
	}
}

// stage writes r's version directory under .tmp and returns its path; the caller removes it.
func (l *dirStore) stage(r *Record) (string, error) {
	tmpRoot := filepath.Join(l.root, tmpDir)
	if err := os.MkdirAll(tmpRoot, 0o755); err != nil {
		return "", fmt.Errorf("styles: %w", err)
	}
	stage, err := os.MkdirTemp(tmpRoot, r.Style.Name+"-"+r.Style.Version+"-")
	if err != nil {
		return "", fmt.Errorf("styles: %w", err)
	}
	if err := writeVersion(stage, r); err != nil {
		os.RemoveAll(stage)
		return "", err
	}
	return stage, nil
}

// writeVersion fills the empty folder dir with r's files, every one fsynced, meta.json last.
func writeVersion(dir string, r *Record) error {
	targets, err := EncodeTargets(r.Style.Targets)
	if err != nil {
		return err
	}
	m := newMeta(r)
	mb, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	// MkdirTemp makes the folder private; the library's files are as readable as its folders.
	if err := os.Chmod(dir, 0o755); err != nil {
		return fmt.Errorf("styles: %w", err)
	}
	for _, f := range []struct {
		name string
		data []byte
	}{{m.Image, r.Image}, {targetsFile, targets}, {thumbFile, r.Thumb}, {metaFile, append(mb, '\n')}} {
		if err := writeFileSync(filepath.Join(dir, f.name), f.data); err != nil {
			return fmt.Errorf("styles: write %s: %w", f.name, err)
		}
	}
	return syncDir(dir)
}

// install renames the staged directory to DIR/styles/name/version, replacing an unindexed or
// damaged copy of that version, and makes the renames durable.
func (l *dirStore) install(stage, name, version string) error {
	nameDir := filepath.Join(l.root, name)
	if err := os.Mkdir(nameDir, 0o755); err == nil {
		if err := syncDir(l.root); err != nil {
			return err
		}
	} else if !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("styles: %w", err)
	}
	vdir := filepath.Join(nameDir, version)
	if err := os.RemoveAll(vdir); err != nil {
		return fmt.Errorf("styles: %w", err)
	}
	if err := os.Rename(stage, vdir); err != nil {
		return fmt.Errorf("styles: %w", err)
	}
	if err := syncDir(nameDir); err != nil {
		return err
	}
	return syncDir(filepath.Join(l.root, tmpDir))
}

// Remove implements Store.
func (l *dirStore) Remove(name string) error {
	if err := CheckName(name); err != nil {
		return err
	}
	return l.writing(func(idx map[string]string) error {
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
	})
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

// writeFileSync creates path (which must not exist) with data and fsyncs it.
func writeFileSync(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o666)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// syncDir fsyncs a folder, making the renames and creations in it durable.
func syncDir(dir string) error {
	if err := atomicfile.SyncDir(dir); err != nil {
		return fmt.Errorf("styles: %w", err)
	}
	return nil
}
