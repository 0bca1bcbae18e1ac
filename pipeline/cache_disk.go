package pipeline

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/styleproxy/styleproxy/internal/atomicfile"
)

// Disk entries: a header, then the body.
//
//	styleproxy-cache 1\n
//	<content type>\n
//	<body length> <CRC-32 (IEEE) of the body, hex>\n
//	<body>
const diskMagic = "styleproxy-cache 1\n"

type diskTier struct {
	dir string

	mu  sync.Mutex
	lru *byteLRU[struct{}] // the files, by key and size; evicting one removes its file
}

func openDiskTier(dir string, budget int64) (*diskTier, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("plugin: cache folder: %w", err)
	}
	d := &diskTier{dir: dir}
	d.lru = newByteLRU(budget, func(key string, _ struct{}) { os.Remove(d.path(key)) })
	type found struct {
		key  string
		size int64
		mod  time.Time
	}
	var all []found
	err := filepath.WalkDir(dir, func(p string, de fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if de.IsDir() {
			return nil
		}
		name := de.Name()
		if len(name) > 1+keyLen && atomicfile.IsTemp(name, name[1:1+keyLen]) { // an interrupted write
			os.Remove(p)
			return nil
		}
		if !validKey(name) || filepath.Base(filepath.Dir(p)) != name[:2] {
			return nil // not ours: leave it alone
		}
		fi, err := de.Info()
		if err != nil {
			return nil
		}
		all = append(all, found{name, fi.Size(), fi.ModTime()})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("plugin: cache folder: %w", err)
	}
	// Oldest first, so the most recently used end up most recent (and the oldest are evicted
	// if the budget shrank).
	sort.Slice(all, func(i, j int) bool { return all[i].mod.Before(all[j].mod) })
	for _, f := range all {
		d.lru.add(f.key, struct{}{}, f.size)
	}
	return d, nil
}

func (d *diskTier) path(key string) string { return filepath.Join(d.dir, key[:2], key) }

func (d *diskTier) get(key string) (Entry, bool) {
	d.mu.Lock()
	_, ok := d.lru.get(key)
	d.mu.Unlock()
	if !ok {
		return Entry{}, false
	}
	p := d.path(key)
	data, err := os.ReadFile(p)
	if err != nil {
		d.forget(key, false)
		return Entry{}, false
	}
	e, err := parseDiskEntry(data)
	if err != nil {
		d.forget(key, true) // damaged: drop it, the caller recomputes
		return Entry{}, false
	}
	now := time.Now()
	os.Chtimes(p, now, now) // recency survives a restart
	return e, true
}

func parseDiskEntry(data []byte) (Entry, error) {
	bad := errors.New("damaged cache entry")
	r := bufio.NewReader(bytes.NewReader(data))
	magic, err := r.ReadString('\n')
	if err != nil || magic != diskMagic {
		return Entry{}, bad
	}
	ct, err := r.ReadString('\n')
	if err != nil {
		return Entry{}, bad
	}
	meta, err := r.ReadString('\n')
	if err != nil {
		return Entry{}, bad
	}
	n, sum, ok := strings.Cut(strings.TrimSuffix(meta, "\n"), " ")
	length, err1 := strconv.Atoi(n)
	crc, err2 := strconv.ParseUint(sum, 16, 32)
	head := len(magic) + len(ct) + len(meta)
	if !ok || err1 != nil || err2 != nil || length != len(data)-head {
		return Entry{}, bad
	}
	body := data[head:]
	if crc32.ChecksumIEEE(body) != uint32(crc) {
		return Entry{}, bad
	}
	return Entry{ContentType: strings.TrimSuffix(ct, "\n"), Body: body}, nil
}

func (d *diskTier) put(key string, e Entry) error {
	if strings.ContainsAny(e.ContentType, "\n\r") {
		return fmt.Errorf("plugin: cache: content type %q has a line break", e.ContentType)
	}
	sub := filepath.Join(d.dir, key[:2])
	if err := os.MkdirAll(sub, 0o755); err != nil {
		return fmt.Errorf("plugin: cache: %w", err)
	}
	head := fmt.Sprintf("%s%s\n%d %08x\n", diskMagic, e.ContentType, len(e.Body), crc32.ChecksumIEEE(e.Body))
	if err := writeEntry(d.path(key), head, e.Body); err != nil {
		return fmt.Errorf("plugin: cache: %w", err)
	}
	size := int64(len(head) + len(e.Body))
	d.mu.Lock()
	defer d.mu.Unlock()
	d.lru.add(key, struct{}{}, size)
	return nil
}

// writeEntry puts a file in place whole: a reader sees the old entry or the new, never part.
func writeEntry(path, head string, body []byte) error {
	f, err := atomicfile.Create(path)
	if err != nil {
		return err
	}
	defer f.Cleanup()
	if _, err := f.WriteString(head); err != nil {
		return err
	}
	if _, err := f.Write(body); err != nil {
		return err
	}
	return f.CloseAtomicallyReplace()
}

// forget drops a key from the index, and its file if remove.
func (d *diskTier) forget(key string, remove bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.lru.remove(key)
	if remove {
		os.Remove(d.path(key))
	}
}
