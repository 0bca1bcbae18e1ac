package styles

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"regexp"
	"time"

	"github.com/styleproxy/styleproxy/engine"
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
