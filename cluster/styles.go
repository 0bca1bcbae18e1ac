package cluster

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/styleproxy/styleproxy/engine"
	"github.com/styleproxy/styleproxy/styles"
)

// The style library in JetStream: the KV bucket StylesBucket maps each name to its current
// version's meta (JSON), and the object store StyleBlobsBucket holds each version's files under
// NAME/VERSION/: targets.bin, thumb.jpg and image.EXT. A registration writes the blobs first and
// then the KV entry, with a revision check (Create for a new name, Update at the revision it
// read for a replacement), so every reader sees the old version or the new one, each whole.
const (
	StylesBucket     = "styleproxy_styles"
	StyleBlobsBucket = "styleproxy_style_blobs"
)

const styleMetaFormat = 1

// styleMeta is a KV value: the version and what its blobs must hold.
type styleMeta struct {
	Format        int            `json:"format"`
	Name          string         `json:"name"`
	Version       string         `json:"version"`
	Engine        string         `json:"engine"`
	StyleSize     int            `json:"style_size"`
	Preset        string         `json:"preset"`
	Weights       engine.Weights `json:"weights"`
	Created       time.Time      `json:"created"`
	ImageExt      string         `json:"image_ext"`
	ImageType     string         `json:"image_type"`
	ImageSHA256   string         `json:"image_sha256"`
	ThumbSHA256   string         `json:"thumb_sha256"`
	TargetsSHA256 string         `json:"targets_sha256"`
	Width         int            `json:"width"`
	Height        int            `json:"height"`
}

func (m *styleMeta) blob(file string) string { return m.Name + "/" + m.Version + "/" + file }
func (m *styleMeta) imageBlob() string       { return m.blob("image" + m.ImageExt) }

// StyleStore is a styles.Store in JetStream. It watches the KV bucket, so a registration or a
// removal through any replica or CLI is served here within moments, without a restart; reads
// answer from memory.
type StyleStore struct {
	c      *Conn
	kv     jetstream.KeyValue
	blobs  jetstream.ObjectStore
	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.RWMutex
	entries map[string]*styleEntry
	revs    map[string]uint64 // the newest KV revision applied per name, puts and deletes alike
}

type styleEntry struct {
	style *styles.Style
	meta  styleMeta
	thumb []byte
}

// OpenStyles opens (creating them if needed) the style buckets and loads every style before it
// returns.
func OpenStyles(ctx context.Context, c *Conn) (*StyleStore, error) {
	s := &StyleStore{c: c, entries: map[string]*styleEntry{}, revs: map[string]uint64{}, done: make(chan struct{})}
	err := c.call(ctx, func(ctx context.Context) (err error) {
		s.kv, err = c.keyValue(ctx, jetstream.KeyValueConfig{
			Bucket: StylesBucket, Description: "styleproxy: style name -> current version", History: 1,
		})
		if err != nil {
			return err
		}
		s.blobs, err = c.objectStore(ctx, jetstream.ObjectStoreConfig{
			Bucket: StyleBlobsBucket, Description: "styleproxy: style versions' targets, thumbnails and uploads",
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("cluster: style buckets: %w", err)
	}
	wctx, cancel := context.WithCancel(context.Background())
	w, err := s.kv.WatchAll(wctx)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("cluster: watch %s: %w", StylesBucket, err)
	}
	s.cancel = cancel
	loaded := make(chan struct{})
	go s.watch(w, loaded)
	select {
	case <-loaded:
		return s, nil
	case <-ctx.Done():
		s.Close()
		return nil, ctx.Err()
	}
}

// watch applies the bucket's changes as they come; loaded is closed once the initial values are
// in.
func (s *StyleStore) watch(w jetstream.KeyWatcher, loaded chan struct{}) {
	defer close(s.done)
	defer w.Stop()
	initial := true
	for e := range w.Updates() {
		if e == nil {
			if initial {
				close(loaded)
				initial = false
			}
			continue
		}
		s.apply(e.Key(), e.Revision(), e.Operation() == jetstream.KeyValuePut, e.Value())
	}
}

// apply installs revision rev of name (a put with value, or a deletion), unless a newer one is
// in already. A version that does not load is reported and skipped, as the data directory does.
func (s *StyleStore) apply(name string, rev uint64, put bool, value []byte) {
	s.mu.RLock()
	stale, cur := rev <= s.revs[name], s.entries[name]
	s.mu.RUnlock()
	if stale {
		return
	}
	var e *styleEntry
	if put {
		var err error
		for try := 1; ; try++ {
			e, err = s.load(name, value, cur)
			if err == nil || !errors.Is(err, ErrUnavailable) || try == loadTries {
				break
			}
			time.Sleep(time.Duration(try) * 100 * time.Millisecond) // NATS is back within moments, or the style is lost here
		}
		if err != nil {
			s.c.log.Error("styles: skipping a style that does not load", "name", name, "revision", rev, "error", err.Error())
		}
	}
	s.install(name, rev, e)
}

// loadTries bounds how often the watch tries to load a version while NATS is unreachable.
const loadTries = 20

func (s *StyleStore) install(name string, rev uint64, e *styleEntry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if rev <= s.revs[name] {
		return
	}
	s.revs[name] = rev
	if e == nil {
		delete(s.entries, name)
	} else {
		s.entries[name] = e
	}
}

// load reads a KV value's version: from cur when it is that version, else from the blobs,
// checked against the meta.
func (s *StyleStore) load(name string, value []byte, cur *styleEntry) (*styleEntry, error) {
	var m styleMeta
	if err := json.Unmarshal(value, &m); err != nil {
		return nil, fmt.Errorf("meta: %w", err)
	}
	switch {
	case m.Format != styleMetaFormat:
		return nil, fmt.Errorf("meta: format %d, want %d", m.Format, styleMetaFormat)
	case m.Name != name || !styles.VersionPattern.MatchString(m.Version):
		return nil, fmt.Errorf("meta: describes %q/%q", m.Name, m.Version)
	case strings.ContainsAny(m.ImageExt, "/"):
		return nil, fmt.Errorf("meta: bad image extension %q", m.ImageExt)
	}
	if cur != nil && cur.meta == m {
		return cur, nil
	}
	var tb, thumb []byte
	err := s.c.call(context.Background(), func(ctx context.Context) (err error) {
		if tb, err = s.blobs.GetBytes(ctx, m.blob("targets.bin")); err != nil {
			return err
		}
		thumb, err = s.blobs.GetBytes(ctx, m.blob("thumb.jpg"))
		return err
	})
	if err != nil {
		return nil, err
	}
	if sum(tb) != m.TargetsSHA256 || sum(thumb) != m.ThumbSHA256 {
		return nil, errors.New("blobs do not match the meta's checksums")
	}
	targets, err := styles.DecodeTargets(tb)
	if err != nil {
		return nil, err
	}
	st := &styles.Style{Name: m.Name, Version: m.Version, StyleSize: m.StyleSize, Preset: m.Preset,
		Weights: m.Weights, Created: m.Created, Targets: targets}
	return &styleEntry{style: st, meta: m, thumb: thumb}, nil
}

func sum(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// Close stops watching. The store must not be used afterwards.
func (s *StyleStore) Close() error {
	s.cancel()
	<-s.done
	return nil
}

// Get implements styles.Store.
func (s *StyleStore) Get(name string) (*styles.Style, []byte, error) {
	e := s.entry(name)
	if e == nil {
		return nil, nil, fmt.Errorf("%w: %q", styles.ErrNotFound, name)
	}
	return e.style, e.thumb, nil
}

func (s *StyleStore) entry(name string) *styleEntry {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.entries[name]
}

// List implements styles.Store.
func (s *StyleStore) List() ([]*styles.Style, error) {
	s.mu.RLock()
	out := make([]*styles.Style, 0, len(s.entries))
	for _, e := range s.entries {
		out = append(out, e.style)
	}
	s.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Image implements styles.Store.
func (s *StyleStore) Image(name string) ([]byte, error) {
	for attempt := 0; ; attempt++ {
		e := s.entry(name)
		if e == nil {
			return nil, fmt.Errorf("%w: %q", styles.ErrNotFound, name)
		}
		var b []byte
		err := s.c.call(context.Background(), func(ctx context.Context) (err error) {
			b, err = s.blobs.GetBytes(ctx, e.meta.imageBlob())
			return err
		})
		if errors.Is(err, jetstream.ErrObjectNotFound) && attempt < 3 {
			time.Sleep(50 * time.Millisecond) // replaced meanwhile: the watch brings the new version
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("styles: %s: %w", name, err)
		}
		if sum(b) != e.meta.ImageSHA256 {
			return nil, fmt.Errorf("styles: %s: stored image is damaged (checksum mismatch)", name)
		}
		return b, nil
	}
}
