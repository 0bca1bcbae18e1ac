package styles

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"syscall"
	"time"

	"github.com/styleproxy/styleproxy/engine"
	"github.com/styleproxy/styleproxy/internal/atomicfile"
)

// The on-disk layout, under the data directory DIR:
//
//	DIR/styles/index.json              {"format": 1, "styles": {"<name>": "<version>", ...}}
//	DIR/styles/.lock                   flock(2): writers hold it exclusively, readers shared
//	DIR/styles/.tmp/                   version directories being written
//	DIR/styles/<name>/<version>/       one registered version, never modified once in place:
//	    meta.json                      name, version, settings, sizes and checksums
//	    targets.bin                    the Gram targets (see EncodeTargets)
//	    thumb.jpg                      gallery thumbnail, at most ThumbnailSize px a side
//	    image.<ext>                    the upload, byte for byte
//
// The index is the single source of truth: a version directory that it does not name is garbage
// (an interrupted write, or a version that was replaced) and the next writer deletes it.
const (
	indexFile   = "index.json"
	lockFile    = ".lock"
	tmpDir      = ".tmp"
	metaFile    = "meta.json"
	targetsFile = "targets.bin"
	thumbFile   = "thumb.jpg"

	storeFormat = 1
)

// VersionPattern is what Version strings look like (and so version directory names).
var VersionPattern = regexp.MustCompile(`^[0-9a-f]{16}$`)

// computeVersion is the content hash that names a version: the image bytes and every setting that
// changes the stored targets or how a request uses them, plus the engine's numerics version.
func computeVersion(image []byte, size int, preset string, w engine.Weights) string {
	img := sha256.Sum256(image)
	h := sha256.New()
	fmt.Fprintf(h, "styleproxy style v1\x00engine=%s\x00image=%x\x00size=%d\x00preset=%s\x00", engine.Version, img, size, preset)
	fmt.Fprintf(h, "content=%016x\x00tv=%016x\x00", math.Float64bits(w.Content), math.Float64bits(w.TV))
	for _, s := range w.Style {
		fmt.Fprintf(h, "style=%016x\x00", math.Float64bits(s))
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// meta is meta.json: what a version directory holds, with the checksums that loading checks.
type meta struct {
	Format      int            `json:"format"`
	Name        string         `json:"name"`
	Version     string         `json:"version"`
	Engine      string         `json:"engine"` // engine.Version at registration
	StyleSize   int            `json:"style_size"`
	Preset      string         `json:"preset"`
	Weights     engine.Weights `json:"weights"`
	Created     time.Time      `json:"created"`
	Image       string         `json:"image"` // file name of the upload
	ImageType   string         `json:"image_type"`
	ImageBytes  int64          `json:"image_bytes"`
	ImageSHA256 string         `json:"image_sha256"`
	Width       int            `json:"width"` // the style image as the network saw it
	Height      int            `json:"height"`
	ThumbSHA256 string         `json:"thumb_sha256"`
}

// targets.bin: the 8-byte magic, the number of layers (uint32), each layer's channel count C
// (uint32), each layer's C×C Gram matrix (row-major float32), then the CRC-32C of everything
// before it. All little-endian.
var targetsMagic = []byte("SPGRAMS1")

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// maxGramChannels bounds C when reading, so a damaged header cannot ask for gigabytes.
const maxGramChannels = 4096

// EncodeTargets is the targets.bin form of st, for any Store that keeps styles as bytes.
func EncodeTargets(st engine.StyleTargets) ([]byte, error) {
	n := len(targetsMagic) + 4 + 4*len(st) + 4
	for i, g := range st {
		if g.C <= 0 || g.C > maxGramChannels || len(g.Data) != g.C*g.C {
			return nil, fmt.Errorf("styles: target %d: %d values for C=%d", i, len(g.Data), g.C)
		}
		n += 4 * len(g.Data)
	}
	b := make([]byte, 0, n)
	b = append(b, targetsMagic...)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(st)))
	for _, g := range st {
		b = binary.LittleEndian.AppendUint32(b, uint32(g.C))
	}
	for _, g := range st {
		for _, v := range g.Data {
			b = binary.LittleEndian.AppendUint32(b, math.Float32bits(v))
		}
	}
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli)), nil
}

// DecodeTargets checks and reads what EncodeTargets wrote.
func DecodeTargets(b []byte) (engine.StyleTargets, error) {
	var st engine.StyleTargets
	fail := func(format string, args ...any) (engine.StyleTargets, error) {
		return st, fmt.Errorf("targets: "+format, args...)
	}
	head := len(targetsMagic) + 4 + 4*len(st)
	if len(b) < head+4 {
		return fail("%d bytes, too short", len(b))
	}
	if !bytes.Equal(b[:len(targetsMagic)], targetsMagic) {
		return fail("bad magic")
	}
	body, sum := b[:len(b)-4], binary.LittleEndian.Uint32(b[len(b)-4:])
	if crc32.Checksum(body, castagnoli) != sum {
		return fail("checksum mismatch (%d bytes)", len(b))
	}
	if n := binary.LittleEndian.Uint32(b[len(targetsMagic):]); n != uint32(len(st)) {
		return fail("%d layers, want %d", n, len(st))
	}
	want := head
	for i := range st {
		c := binary.LittleEndian.Uint32(b[len(targetsMagic)+4+4*i:])
		if c == 0 || c > maxGramChannels {
			return fail("layer %d has %d channels", i, c)
		}
		st[i].C = int(c)
		want += 4 * int(c) * int(c)
	}
	if len(body) != want {
		return fail("%d bytes, want %d", len(b), want+4)
	}
	off := head
	for i := range st {
		d := make([]float32, st[i].C*st[i].C)
		for j := range d {
			v := math.Float32frombits(binary.LittleEndian.Uint32(b[off:]))
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return fail("layer %d holds %v", i, v)
			}
			d[j] = v
			off += 4
		}
		st[i].Data = d
	}
	return st, nil
}

// index is index.json.
type index struct {
	Format int               `json:"format"`
	Styles map[string]string `json:"styles"` // name -> version
}

// errBadIndex marks an index.json that exists but cannot be used.
var errBadIndex = errors.New("damaged index")

// readIndex reads DIR/styles/index.json; a missing file is an empty index (and exists=false).
func readIndex(root string) (idx map[string]string, exists bool, err error) {
	b, err := os.ReadFile(filepath.Join(root, indexFile))
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]string{}, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	var x index
	if err := json.Unmarshal(b, &x); err != nil {
		return nil, true, fmt.Errorf("%w: %s: %v", errBadIndex, indexFile, err)
	}
	if x.Format != storeFormat {
		return nil, true, fmt.Errorf("%w: %s: format %d, want %d", errBadIndex, indexFile, x.Format, storeFormat)
	}
	if x.Styles == nil {
		x.Styles = map[string]string{}
	}
	for name, v := range x.Styles {
		if !NamePattern.MatchString(name) || !VersionPattern.MatchString(v) {
			return nil, true, fmt.Errorf("%w: %s: bad entry %q: %q", errBadIndex, indexFile, name, v)
		}
	}
	return x.Styles, true, nil
}

// writeIndex replaces index.json atomically and durably: temp file, fsync, rename, fsync of the
// folder.
func writeIndex(root string, idx map[string]string) error {
	b, err := json.MarshalIndent(index{Format: storeFormat, Styles: idx}, "", "  ")
	if err != nil {
		return err
	}
	f, err := atomicfile.Create(filepath.Join(root, indexFile))
	if err != nil {
		return fmt.Errorf("styles: write index: %w", err)
	}
	defer f.Cleanup()
	if _, err := f.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("styles: write index: %w", err)
	}
	step("index-staged")
	if err := f.CloseAtomicallyReplace(); err != nil {
		return fmt.Errorf("styles: write index: %w", err)
	}
	return syncDir(root)
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

// statKey identifies one state of index.json: it is replaced by rename on every write, so any
// write changes the inode as well as the size or time.
type statKey struct {
	exists   bool
	dev, ino uint64
	size     int64
	mtime    int64
}

func statIndex(root string) (statKey, error) {
	fi, err := os.Stat(filepath.Join(root, indexFile))
	if errors.Is(err, fs.ErrNotExist) {
		return statKey{}, nil
	}
	if err != nil {
		return statKey{}, err
	}
	k := statKey{exists: true, size: fi.Size(), mtime: fi.ModTime().UnixNano()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		k.dev, k.ino = uint64(st.Dev), uint64(st.Ino) //nolint:unconvert // int32 on some systems
	}
	return k, nil
}

// fileLock is an flock(2) on DIR/styles/.lock. flock locks belong to the open file, so two
// Library values (in one process or two) exclude each other; one Library serialises its own use
// of its file with a mutex.
type fileLock struct{ f *os.File }

func openLock(root string) (*fileLock, error) {
	f, err := os.OpenFile(filepath.Join(root, lockFile), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("styles: open lock: %w", err)
	}
	return &fileLock{f: f}, nil
}

func (l *fileLock) lock(how int) error {
	for {
		err := syscall.Flock(int(l.f.Fd()), how)
		if err == nil {
			return nil
		}
		if !errors.Is(err, syscall.EINTR) {
			return fmt.Errorf("styles: lock %s: %w", l.f.Name(), err)
		}
	}
}

func (l *fileLock) exclusive() error { return l.lock(syscall.LOCK_EX) }
func (l *fileLock) shared() error    { return l.lock(syscall.LOCK_SH) }
func (l *fileLock) unlock()          { _ = syscall.Flock(int(l.f.Fd()), syscall.LOCK_UN) }
func (l *fileLock) close() error     { return l.f.Close() }
