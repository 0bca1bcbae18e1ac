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

// Entry is one cached response: an encoded image and its media type. Its bytes are shared
// between the cache and every response that serves them: never modify them.
type Entry struct {
	ContentType string
	Body        []byte
}

// CacheConfig sizes a Cache. A tier whose size is zero (or whose Dir is empty) is off.
type CacheConfig struct {
	// MemBytes is the memory tier's budget, in bytes of cached responses (plus a small
	// allowance a key); least recently used entries are evicted beyond it.
	MemBytes int64
	// Dir is the disk tier's folder (created if missing). Entries are files written atomically
	// (a temporary file renamed into place), checked on reading (length and CRC-32), and kept
	// across restarts. One process at a time may use a folder.
	Dir string
	// DiskBytes is the disk tier's budget (0 = unbounded); least recently used files (by their
	// modification time, which a hit refreshes) are removed beyond it.
	DiskBytes int64
	// Shared is a tier outside the process that several replicas share (the cluster's result
	// store), looked up after the local tiers and written through; nil for none.
	Shared SharedTier
}

// SharedTier is a cache tier that other processes read and write too. It bounds itself (a byte
// budget or an age) and may lose entries; reads of a damaged or unreachable entry are misses.
type SharedTier interface {
	Get(key string) (Entry, bool)
	Put(key string, e Entry) error
}

// Cache is a two-tier cache of responses keyed by the pipeline's cache keys (hex SHA-256): L1 in
// memory and L2 on disk, each bounded by a byte budget with least-recently-used eviction. A disk hit is copied into memory. Safe for concurrent use.
type Cache struct {
	mem    *memTier
	disk   *diskTier
	shared SharedTier
}

// NewCache makes a cache; with a Dir it reads the folder's index (and removes leftovers of
// interrupted writes).
func NewCache(cfg CacheConfig) (*Cache, error) {
	c := &Cache{shared: cfg.Shared}
	if cfg.MemBytes > 0 {
		c.mem = newMemTier(cfg.MemBytes)
	}
	if cfg.Dir != "" {
		d, err := openDiskTier(cfg.Dir, cfg.DiskBytes)
		if err != nil {
			return nil, err
		}
		c.disk = d
	}
	return c, nil
}

// Cache tiers, as Get reports them and Hooks.OnCache receives them.
const (
	TierMemory = "memory"
	TierDisk   = "disk"
	TierShared = "shared"
)

// Get returns the entry for key and the tier that had it ("" on a miss).
func (c *Cache) Get(key string) (Entry, string, bool) {
	e, tier, ok, _ := c.get(key)
	return e, tier, ok
}

// get also returns the tiers it looked in, in order, for the hooks.
func (c *Cache) get(key string) (Entry, string, bool, []string) {
	if c == nil {
		return Entry{}, "", false, nil
	}
	var looked []string
	if c.mem != nil {
		looked = append(looked, TierMemory)
		if e, ok := c.mem.get(key); ok {
			return e, TierMemory, true, looked
		}
	}
	if c.disk != nil {
		looked = append(looked, TierDisk)
		if e, ok := c.disk.get(key); ok {
			if c.mem != nil {
				c.mem.put(key, e)
			}
			return e, TierDisk, true, looked
		}
	}
	if c.shared != nil {
		looked = append(looked, TierShared)
		if e, ok := c.shared.Get(key); ok {
			c.putLocal(key, e)
			return e, TierShared, true, looked
		}
	}
	return Entry{}, "", false, looked
}

// Put stores the entry in every tier. A disk or shared write failure is returned (the memory
// tier has the entry all the same).
func (c *Cache) Put(key string, e Entry) error {
	if c == nil {
		return nil
	}
	if !validKey(key) {
		return fmt.Errorf("plugin: cache key %q is not 64 hex digits", key)
	}
	err := c.putLocal(key, e)
	if c.shared != nil {
		err = errors.Join(err, c.shared.Put(key, e))
	}
	return err
}

// putLocal stores the entry in the memory and disk tiers: what the shared tier gave, or what a
// remote worker stored there already.
func (c *Cache) putLocal(key string, e Entry) error {
	if c == nil || !validKey(key) {
		return nil
	}
	if c.mem != nil {
		c.mem.put(key, e)
	}
	if c.disk != nil {
		return c.disk.put(key, e)
	}
	return nil
}

// CacheStats is a snapshot of a cache's size.
type CacheStats struct {
	MemItems, DiskItems int
	MemBytes, DiskBytes int64
}

// Stats returns the current sizes of both tiers.
func (c *Cache) Stats() CacheStats {
	var s CacheStats
	if c == nil {
		return s
	}
	if c.mem != nil {
		c.mem.mu.Lock()
		s.MemItems, s.MemBytes = c.mem.lru.len(), c.mem.lru.bytes
		c.mem.mu.Unlock()
	}
	if c.disk != nil {
		c.disk.mu.Lock()
		s.DiskItems, s.DiskBytes = c.disk.lru.len(), c.disk.lru.bytes
		c.disk.mu.Unlock()
	}
	return s
}

// keyLen is a key's length: a SHA-256 in hex.
const keyLen = 64

func validKey(k string) bool {
	if len(k) != keyLen {
		return false
	}
	for _, c := range []byte(k) {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// memOverhead is what an entry costs beyond its body and key: the list element, the content
// type and the map slot, roughly.
const memOverhead = 256

// memTier keeps encoded responses in memory within a byte budget.
type memTier struct {
	mu  sync.Mutex
	lru *byteLRU[Entry]
}

func newMemTier(budget int64) *memTier {
	return &memTier{lru: newByteLRU[Entry](budget, nil)}
}

func (m *memTier) get(key string) (Entry, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.lru.get(key)
}

func (m *memTier) put(key string, e Entry) {
	size := int64(len(e.Body)+len(e.ContentType)+len(key)) + memOverhead
	m.mu.Lock()
	defer m.mu.Unlock()
	if size > m.lru.budget {
		return // would evict everything and still not fit
	}
	m.lru.add(key, e, size)
}

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
