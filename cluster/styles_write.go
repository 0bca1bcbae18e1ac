package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/styleproxy/styleproxy/engine"
	"github.com/styleproxy/styleproxy/styles"
)

// casRetries bounds how often Put re-reads a name that another writer changed under it.
const casRetries = 5

// Put implements styles.Store: the blobs first, then the KV entry with a revision check.
func (s *StyleStore) Put(r *styles.Record, replace bool) (*styles.Style, error) {
	targets, err := styles.EncodeTargets(r.Style.Targets)
	if err != nil {
		return nil, err
	}
	st := r.Style
	m := styleMeta{
		Format: styleMetaFormat, Name: st.Name, Version: st.Version, Engine: engine.Version, StyleSize: st.StyleSize,
		Preset: st.Preset, Weights: st.Weights, Created: st.Created, ImageExt: r.ImageExt, ImageType: r.ImageType,
		ImageSHA256: sum(r.Image), ThumbSHA256: sum(r.Thumb), TargetsSHA256: sum(targets), Width: r.Width, Height: r.Height,
	}
	value, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	wrote := false
	for range casRetries {
		cur, err := s.current(st.Name)
		if err != nil {
			return nil, err
		}
		if cur != nil && !replace {
			return nil, fmt.Errorf("%w: %q", styles.ErrExists, st.Name)
		}
		if cur != nil && cur.meta.Version == st.Version {
			if e := s.entry(st.Name); e != nil && e.meta.Version == st.Version {
				return e.style, nil
			}
			if e, err := s.load(st.Name, cur.value, nil); err == nil {
				s.install(st.Name, cur.rev, e)
				return e.style, nil
			} // damaged: write it anew
		}
		if !wrote {
			if err := s.putBlobs(&m, r.Image, r.Thumb, targets); err != nil {
				return nil, err
			}
			wrote = true
		}
		var rev uint64
		err = s.c.call(context.Background(), func(ctx context.Context) (err error) {
			if cur == nil {
				rev, err = s.kv.Create(ctx, st.Name, value)
			} else {
				rev, err = s.kv.Update(ctx, st.Name, value, cur.rev)
			}
			return err
		})
		if errors.Is(err, jetstream.ErrKeyExists) || isWrongRevision(err) {
			continue // another writer got there first: look again
		}
		if err != nil {
			return nil, fmt.Errorf("styles: %s: %w", st.Name, err)
		}
		e := &styleEntry{style: st, meta: m, thumb: r.Thumb}
		s.install(st.Name, rev, e)
		s.collect(st.Name, st.Version)
		return st, nil
	}
	return nil, fmt.Errorf("styles: %s: changed by other writers %d times in a row", st.Name, casRetries)
}

func isWrongRevision(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence
}

// kvState is a name's KV entry as read for a write.
type kvState struct {
	rev   uint64
	value []byte
	meta  styleMeta
}

// current reads name's entry from the bucket (nil when there is none).
func (s *StyleStore) current(name string) (*kvState, error) {
	var e jetstream.KeyValueEntry
	err := s.c.call(context.Background(), func(ctx context.Context) (err error) {
		e, err = s.kv.Get(ctx, name)
		return err
	})
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("styles: %s: %w", name, err)
	}
	st := &kvState{rev: e.Revision(), value: e.Value()}
	if err := json.Unmarshal(st.value, &st.meta); err != nil {
		st.meta = styleMeta{} // damaged: replaced by the write
	}
	return st, nil
}

func (s *StyleStore) putBlobs(m *styleMeta, image, thumb, targets []byte) error {
	for _, b := range []struct {
		name string
		data []byte
	}{{m.imageBlob(), image}, {m.blob("targets.bin"), targets}, {m.blob("thumb.jpg"), thumb}} {
		err := s.c.call(context.Background(), func(ctx context.Context) error {
			_, err := s.blobs.PutBytes(ctx, b.name, b.data)
			return err
		})
		if err != nil {
			return fmt.Errorf("styles: store %s: %w", b.name, err)
		}
	}
	return nil
}

// blobGrace is how long a version's blobs outlive the KV entry that named them: replicas that
// were loading them as the entry changed still find them, and so does a registration whose
// blobs are written but whose entry is not yet.
const blobGrace = time.Minute

// collect removes name's blobs of versions other than keep that are older than blobGrace (a
// replaced version, an interrupted registration). A failure only leaves garbage for the next
// write of the name.
func (s *StyleStore) collect(name, keep string) {
	var infos []*jetstream.ObjectInfo
	err := s.c.call(context.Background(), func(ctx context.Context) (err error) {
		infos, err = s.blobs.List(ctx)
		return err
	})
	if err != nil {
		if !errors.Is(err, jetstream.ErrNoObjectsFound) {
			s.c.log.Warn("styles: cannot list blobs to collect", "error", err.Error())
		}
		return
	}
	for _, info := range infos {
		n, rest, _ := strings.Cut(info.Name, "/")
		version, _, _ := strings.Cut(rest, "/")
		if n != name || version == keep || time.Since(info.ModTime) < blobGrace {
			continue
		}
		err := s.c.call(context.Background(), func(ctx context.Context) error { return s.blobs.Delete(ctx, info.Name) })
		if err != nil && !errors.Is(err, jetstream.ErrObjectNotFound) {
			s.c.log.Warn("styles: cannot remove an old version's blob", "blob", info.Name, "error", err.Error())
		}
	}
}

// Remove implements styles.Store.
func (s *StyleStore) Remove(name string) error {
	for range casRetries {
		cur, err := s.current(name)
		if err != nil {
			return err
		}
		if cur == nil {
			return fmt.Errorf("%w: %q", styles.ErrNotFound, name)
		}
		err = s.c.call(context.Background(), func(ctx context.Context) error {
			return s.kv.Delete(ctx, name, jetstream.LastRevision(cur.rev))
		})
		if isWrongRevision(err) {
			continue
		}
		if err != nil {
			return fmt.Errorf("styles: remove %s: %w", name, err)
		}
		s.install(name, cur.rev+1, nil) // the delete marker's revision is at least this
		s.collect(name, "")
		return nil
	}
	return fmt.Errorf("styles: %s: changed by other writers %d times in a row", name, casRetries)
}
