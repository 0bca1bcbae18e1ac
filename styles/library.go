package styles

import (
	"context"
	"fmt"
	"log/slog"
	"time"
)

// Store keeps a library's styles: a data directory on one host (Open), or a cluster's shared
// store (package cluster keeps them in NATS JetStream). Library checks names and options and
// computes what a registration stores; a Store keeps records and makes them visible to every
// reader of the same backing store, in this process or another, without a restart.
//
// Implementations are safe for concurrent use; the *Style values they return are shared and
// must not be modified. storetest.Run is the conformance test every Store passes.
type Store interface {
	// Get returns the current version of name and its thumbnail (ErrNotFound).
	Get(name string) (*Style, []byte, error)
	// List returns every loadable style, sorted by name.
	List() ([]*Style, error)
	// Image returns the current version's upload, byte for byte (ErrNotFound).
	Image(name string) ([]byte, error)
	// Put stores r and makes it name's current version, atomically: a reader sees the old
	// version or the new one, each whole. Unless replace, an existing name is ErrExists. A
	// record of the current version returns that version unchanged.
	Put(r *Record, replace bool) (*Style, error)
	// Remove deletes name (ErrNotFound).
	Remove(name string) error
	// Close releases the store's resources.
	Close() error
}

// Record is one version as a Store keeps it.
type Record struct {
	Style     *Style // everything, Targets included
	Image     []byte // the upload, byte for byte
	ImageExt  string // its file extension (".png")
	ImageType string // its media type
	Thumb     []byte // a JPEG at most ThumbnailSize px a side
	// Width and Height are the style image's as the network saw it.
	Width, Height int
}

// Library is the style library on a Store: it checks names and options, computes a
// registration's targets and thumbnail with its TargetComputer, and hands the store the result.
// A Library is safe for concurrent use. The *Style values it returns are shared: do not modify
// them.
type Library struct {
	store Store
	tc    TargetComputer
}

// Open opens (creating it if needed) the style library under the data directory dir. tc computes
// Gram targets for Add; it may be nil for read-only use (Get, List, Remove, Thumbnail, Image),
// and Add then fails with ErrReadOnly. log receives reports of damaged entries (nil: discard).
//
// Open removes leftovers of interrupted writes. A damaged style is reported and skipped; a damaged
// index.json is reported and rebuilt from the version directories (the newest valid one of each
// name), so Open fails only when the directory cannot be used at all.
func Open(dir string, tc TargetComputer, log *slog.Logger) (*Library, error) {
	ds, err := OpenDir(dir, log)
	if err != nil {
		return nil, err
	}
	return New(ds, tc), nil
}

// OpenDir opens the Store of the data directory dir, as Open does.
func OpenDir(dir string, log *slog.Logger) (Store, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ds, err := openDir(dir, log)
	if err != nil {
		return nil, err
	}
	return ds, nil
}

// New returns the library on store; tc as for Open.
func New(store Store, tc TargetComputer) *Library { return &Library{store: store, tc: tc} }

// Close closes the store. The Library must not be used afterwards.
func (l *Library) Close() error { return l.store.Close() }

// CheckName returns an error wrapping ErrInvalidName, quoting the name, unless name can be a
// style's: the library's methods check it, and so may a caller that wants to refuse a bad name
// before costlier work.
func CheckName(name string) error {
	if NamePattern.MatchString(name) {
		return nil
	}
	if len(name) > 80 {
		name = name[:80] + "..."
	}
	return fmt.Errorf("%w (got %q)", ErrInvalidName, name)
}

func notFound(name string) error { return fmt.Errorf("%w: %q", ErrNotFound, name) }

// Get returns the current version of the style called name, with its targets. Errors:
// ErrNotFound, ErrInvalidName.
func (l *Library) Get(name string) (*Style, error) {
	s, _, err := l.GetThumbnail(name)
	return s, err
}

// List returns every loadable style, sorted by name.
func (l *Library) List() ([]*Style, error) { return l.store.List() }

// Thumbnail returns the current version's thumbnail, a JPEG at most ThumbnailSize pixels a side.
// The slice is shared: do not modify it.
func (l *Library) Thumbnail(name string) ([]byte, error) {
	_, th, err := l.GetThumbnail(name)
	return th, err
}

// GetThumbnail returns the current style and its thumbnail, both of the same version (for an
// HTTP response whose ETag is the version). The slice is shared: do not modify it.
func (l *Library) GetThumbnail(name string) (*Style, []byte, error) {
	if err := CheckName(name); err != nil {
		return nil, nil, err
	}
	return l.store.Get(name)
}

// Image returns the current version's original upload, byte for byte.
func (l *Library) Image(name string) ([]byte, error) {
	if err := CheckName(name); err != nil {
		return nil, err
	}
	return l.store.Image(name)
}

// Remove deletes the style called name. Errors: ErrNotFound, ErrInvalidName.
func (l *Library) Remove(name string) error {
	if err := CheckName(name); err != nil {
		return err
	}
	return l.store.Remove(name)
}

// Add registers image under name: it decodes the image, scales it to the style size, computes its
// Gram targets with the library's TargetComputer and stores everything. The new style is visible
// to every reader (in any process) once Add returns, and only then. Registering an image and
// settings identical to the current version's returns that version unchanged.
//
// Errors: ErrInvalidName, ErrInvalidOptions, ErrExists (unless o.Replace), ErrTooSmall,
// ErrReadOnly, and the imaging errors for the image (ErrNotImage, ErrTooLarge,
// ErrUnsupportedFormat, ErrZeroSize), wrapped; a cancelled ctx stops it before anything is
// written.
func (l *Library) Add(ctx context.Context, name string, image []byte, o AddOptions) (*Style, error) {
	if err := CheckName(name); err != nil {
		return nil, err
	}
	s, err := resolveOptions(o)
	if err != nil {
		return nil, err
	}
	if l.tc == nil {
		return nil, ErrReadOnly
	}
	if !o.Replace {
		if _, err := l.Get(name); err == nil {
			return nil, fmt.Errorf("%w: %q", ErrExists, name)
		}
	}
	r, err := prepare(ctx, l.tc, image, s.size, o.Limits)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	r.Style.Name, r.Style.Version = name, computeVersion(image, s.size, s.preset, s.weights)
	r.Style.StyleSize, r.Style.Preset, r.Style.Weights = s.size, s.preset, s.weights
	r.Style.Created = time.Now().UTC()
	return l.store.Put(r, o.Replace)
}
