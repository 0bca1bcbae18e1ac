// Package cachetest is the conformance test of the pipeline's cache tiers: memory, disk and a
// shared tier (the cluster's) each run the same checks through pipeline.Cache.
package cachetest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sync"
	"testing"

	"github.com/styleproxy/styleproxy/pipeline"
)

// Run checks a cache made by open, whose tier is the one reported as tier. When shared, two
// caches from open share their entries (as replicas do), and Run checks that too.
func Run(t *testing.T, tier string, shared bool, open func(t *testing.T) *pipeline.Cache) {
	t.Run("PutGet", func(t *testing.T) { testPutGet(t, tier, open(t)) })
	t.Run("Concurrent", func(t *testing.T) { testConcurrent(t, open(t)) })
	if shared {
		t.Run("Shared", func(t *testing.T) { testShared(t, tier, open(t), open(t)) })
	}
}

// Key is a valid cache key made from s.
func Key(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

func body(n, seed int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*seed + i>>8)
	}
	return b
}

func testPutGet(t *testing.T, tier string, c *pipeline.Cache) {
	if _, got, ok := c.Get(Key("missing")); ok {
		t.Errorf("a key never stored hits the %s tier", got)
	}
	entries := map[string]pipeline.Entry{
		Key("a"): {ContentType: "image/png", Body: body(10, 1)},
		Key("b"): {ContentType: "image/jpeg", Body: body(300_000, 7)}, // several object chunks
		Key("c"): {ContentType: "image/webp", Body: []byte{}},
	}
	for k, e := range entries {
		if err := c.Put(k, e); err != nil {
			t.Fatal(err)
		}
	}
	for k, want := range entries {
		got, from, ok := c.Get(k)
		if !ok || from != tier || got.ContentType != want.ContentType || !bytes.Equal(got.Body, want.Body) {
			t.Errorf("Get(%s) = %q %d bytes from %q (%v); want %q %d bytes from %q", k[:8], got.ContentType, len(got.Body), from, ok, want.ContentType, len(want.Body), tier)
		}
	}
	// A key's bytes never change (the key hashes everything they depend on): storing it again
	// keeps it whole.
	if err := c.Put(Key("b"), entries[Key("b")]); err != nil {
		t.Fatal(err)
	}
	if got, _, _ := c.Get(Key("b")); !bytes.Equal(got.Body, entries[Key("b")].Body) {
		t.Errorf("after a second Put: %d bytes", len(got.Body))
	}
	if err := c.Put("not-a-key", pipeline.Entry{Body: body(1, 1)}); err == nil {
		t.Error("a malformed key was accepted")
	}
}

func testConcurrent(t *testing.T, c *pipeline.Cache) {
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 5 {
				k := Key(fmt.Sprint(j))
				want := body(1000+j, j+1)
				if err := c.Put(k, pipeline.Entry{ContentType: "image/png", Body: want}); err != nil {
					t.Error(err)
					return
				}
				if got, _, ok := c.Get(k); !ok || !bytes.Equal(got.Body, want) {
					t.Errorf("goroutine %d: Get(%d) = %d bytes, %v", i, j, len(got.Body), ok)
				}
			}
		}()
	}
	wg.Wait()
}

func testShared(t *testing.T, tier string, a, b *pipeline.Cache) {
	k := Key("shared")
	want := pipeline.Entry{ContentType: "image/png", Body: body(5000, 5)}
	if err := a.Put(k, want); err != nil {
		t.Fatal(err)
	}
	got, from, ok := b.Get(k)
	if !ok || from != tier || !bytes.Equal(got.Body, want.Body) || got.ContentType != want.ContentType {
		t.Errorf("another cache: %q %d bytes from %q (%v); want what the first stored, from %q", got.ContentType, len(got.Body), from, ok, tier)
	}
}
