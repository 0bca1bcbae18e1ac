package pipeline

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/styleproxy/styleproxy/internal/testutil"
)

func testKey(i int) string {
	s := sha256.Sum256([]byte(fmt.Sprint(i)))
	return hex.EncodeToString(s[:])
}

func body(i, n int) []byte { return bytes.Repeat([]byte{byte(i)}, n) }

func TestMemoryTierBudget(t *testing.T) {
	const size = 10_000
	per := int64(size + len("image/png") + 64 + memOverhead)
	c, err := NewCache(CacheConfig{MemBytes: 5 * per})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		c.Put(testKey(i), Entry{"image/png", body(i, size)})
	}
	if st := c.Stats(); st.MemItems != 5 || st.MemBytes != 5*per {
		t.Fatalf("after 5 puts: %+v", st)
	}
	c.Get(testKey(0)) // 0 is now the most recent; 1 the least
	c.Put(testKey(5), Entry{"image/png", body(5, size)})
	if _, _, ok := c.Get(testKey(1)); ok {
		t.Error("the least recently used entry survived")
	}
	for _, i := range []int{0, 2, 3, 4, 5} {
		e, tier, ok := c.Get(testKey(i))
		if !ok || tier != TierMemory || !bytes.Equal(e.Body, body(i, size)) || e.ContentType != "image/png" {
			t.Errorf("entry %d: ok %v tier %q", i, ok, tier)
		}
	}
	if st := c.Stats(); st.MemBytes > 5*per {
		t.Errorf("over budget: %+v", st)
	}
	// One entry bigger than the whole budget is not kept (and evicts nothing).
	c.Put(testKey(9), Entry{"image/png", body(9, int(6*per))})
	if _, _, ok := c.Get(testKey(9)); ok || c.Stats().MemItems != 5 {
		t.Error("an entry over the budget was kept or evicted others")
	}
	// Replacing a key does not count it twice.
	c.Put(testKey(5), Entry{"image/png", body(7, size)})
	if st := c.Stats(); st.MemItems != 5 || st.MemBytes != 5*per {
		t.Errorf("after replacing: %+v", st)
	}
	if err := c.Put("not-a-key", Entry{}); err == nil {
		t.Error("Put accepted a malformed key")
	}
	var nilCache *Cache
	if _, _, ok := nilCache.Get(testKey(1)); ok || nilCache.Put(testKey(1), Entry{}) != nil {
		t.Error("a nil cache is not a no-op")
	}
}

func TestMemoryTierConcurrent(t *testing.T) {
	c, _ := NewCache(CacheConfig{MemBytes: 50 * (1000 + memOverhead + 100)})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 500 {
				k := testKey((g*7 + i) % 120)
				if e, _, ok := c.Get(k); ok && len(e.Body) != 1000 {
					t.Error("wrong body")
				}
				c.Put(k, Entry{"image/jpeg", body(i, 1000)})
			}
		}()
	}
	wg.Wait()
	if st := c.Stats(); st.MemItems > 50 || st.MemBytes > 50*(1000+memOverhead+100) {
		t.Errorf("over budget after concurrent use: %+v", st)
	}
}

func TestDiskTier(t *testing.T) {
	dir := t.TempDir()
	c, err := NewCache(CacheConfig{Dir: dir, DiskBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := c.Put(testKey(i), Entry{"image/webp", body(i, 1000)}); err != nil {
			t.Fatal(err)
		}
	}
	// Files are whole: no temporary files remain, each entry parses.
	var files []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if !d.IsDir() {
			files = append(files, p)
		}
		return nil
	})
	if len(files) != 3 {
		t.Fatalf("files %v", files)
	}
	testutil.CheckFileModes(t, dir)
	for _, f := range files {
		if strings.HasPrefix(filepath.Base(f), ".") {
			t.Errorf("temporary file left: %s", f)
		}
	}

	// A restart finds them; a leftover temporary file and a foreign file are dealt with.
	leftover := filepath.Join(dir, testKey(0)[:2], "."+testKey(0)+"123") // renameio's temporary name
	os.WriteFile(leftover, []byte("partial"), 0o644)
	os.WriteFile(filepath.Join(dir, "README"), []byte("not ours"), 0o644)
	c2, err := NewCache(CacheConfig{Dir: dir, DiskBytes: 1 << 20, MemBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	if st := c2.Stats(); st.DiskItems != 3 {
		t.Fatalf("after restart: %+v", st)
	}
	if _, err := os.Stat(leftover); !os.IsNotExist(err) {
		t.Error("a leftover temporary file was not removed")
	}
	if _, err := os.Stat(filepath.Join(dir, "README")); err != nil {
		t.Error("a foreign file was removed")
	}
	e, tier, ok := c2.Get(testKey(1))
	if !ok || tier != TierDisk || e.ContentType != "image/webp" || !bytes.Equal(e.Body, body(1, 1000)) {
		t.Fatalf("disk entry after restart: %v %q %+v", ok, tier, e.ContentType)
	}
	if _, tier, _ := c2.Get(testKey(1)); tier != TierMemory {
		t.Errorf("a disk hit was not copied to memory (tier %q)", tier)
	}

	// A damaged file is a miss, and is removed.
	p := filepath.Join(dir, testKey(2)[:2], testKey(2))
	data, _ := os.ReadFile(p)
	data[len(data)-1] ^= 0xff
	os.WriteFile(p, data, 0o644)
	if _, _, ok := c2.Get(testKey(2)); ok {
		t.Error("a damaged entry was served")
	}
	if _, err := os.Stat(p); !os.IsNotExist(err) {
		t.Error("a damaged entry was not removed")
	}
	for _, bad := range []string{"", diskMagic, diskMagic + "image/png\n5 0\nabc", "garbage\nx\n1 0\na"} {
		if _, err := parseDiskEntry([]byte(bad)); err == nil {
			t.Errorf("parseDiskEntry(%q) accepted", bad)
		}
	}
}

func TestDiskTierBudget(t *testing.T) {
	dir := t.TempDir()
	c, _ := NewCache(CacheConfig{Dir: dir, DiskBytes: 10_000})
	for i := range 20 {
		c.Put(testKey(i), Entry{"image/png", body(i, 1000)})
		c.Get(testKey(0)) // keep 0 in use
	}
	st := c.Stats()
	if st.DiskBytes > 10_000 || st.DiskItems < 5 {
		t.Fatalf("disk tier %+v: over budget or over-evicted", st)
	}
	if _, _, ok := c.Get(testKey(0)); !ok {
		t.Error("the most used entry was evicted")
	}
	if _, _, ok := c.Get(testKey(1)); ok {
		t.Error("an old entry survived")
	}
	var size int64
	var n int
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if !d.IsDir() {
			fi, _ := d.Info()
			size += fi.Size()
			n++
		}
		return nil
	})
	if size != st.DiskBytes || n != st.DiskItems {
		t.Errorf("on disk: %d files, %d bytes; index says %+v", n, size, st)
	}
	// A smaller budget at restart trims the folder.
	c2, _ := NewCache(CacheConfig{Dir: dir, DiskBytes: 3000})
	if st := c2.Stats(); st.DiskBytes > 3000 || st.DiskItems == 0 {
		t.Errorf("after restart with a smaller budget: %+v", st)
	}
}
