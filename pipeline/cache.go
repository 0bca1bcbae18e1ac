package pipeline

import (
	"errors"
	"fmt"
	"sync"
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
