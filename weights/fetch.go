package weights

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/styleproxy/styleproxy/internal/atomicfile"
)

// OfficialURL is torchvision's published squeezenet1_1 checkpoint. Its
// name carries the first 8 hex digits of the file's SHA-256.
const OfficialURL = "https://download.pytorch.org/models/squeezenet1_1-b8a52dc0.pth"

// ErrChecksum is matched (errors.Is) by Fetch's error when the downloaded
// bytes' SHA-256 does not start with the prefix in the file name.
var ErrChecksum = errors.New("SHA-256 mismatch")

// hashNameRE is torchvision's convention: name-<sha256 prefix>.ext.
var hashNameRE = regexp.MustCompile(`-([0-9a-f]{8,64})\.[A-Za-z0-9]+$`)

// Fetcher downloads checkpoints. The zero value is ready to use.
type Fetcher struct {
	// Client makes the request; nil means http.DefaultClient.
	Client *http.Client
	// MaxSize bounds the download in bytes; 0 means MaxFileSize.
	MaxSize int64
}

// Fetch downloads url to destPath with a zero Fetcher; see Fetcher.Fetch.
func Fetch(ctx context.Context, url, destPath string, progress func(done, total int64)) error {
	return (&Fetcher{}).Fetch(ctx, url, destPath, progress)
}

// Fetch downloads url into destPath, creating destPath's directory if
// needed. The body is streamed to a temporary file in that directory while
// its SHA-256 is computed; the download is rejected unless the status is
// 200, the body is complete (as long as any Content-Length) and within
// MaxSize, the SHA-256's hex starts with the prefix that the URL's or
// destPath's file name carries (torchvision's name-<prefix>.pth rule; a
// name without one is an error), and Load accepts the file. Only then is the
// file synced and renamed to destPath, so destPath is either left as it was
// or replaced by a complete, verified file; no temporary file survives a
// failure. progress, if not nil, is called with the bytes received so far
// and the expected total (-1 when the server does not say).
func (f *Fetcher) Fetch(ctx context.Context, rawURL, destPath string, progress func(done, total int64)) error {
	prefix, err := hashPrefix(rawURL, destPath)
	if err != nil {
		return err
	}
	client := f.Client
	if client == nil {
		client = http.DefaultClient
	}
	limit := f.MaxSize
	if limit <= 0 {
		limit = MaxFileSize
	}
	fail := func(format string, args ...any) error {
		return fmt.Errorf("weights: fetching "+rawURL+": "+format, args...)
	}

	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return fail("%w", err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("weights: %w", err) // *url.Error names method and URL
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fail("server answered %s", resp.Status)
	}
	if resp.ContentLength > limit {
		return fail("file is %d bytes, more than the %d-byte limit", resp.ContentLength, limit)
	}

	dir := filepath.Dir(destPath)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("weights: %w", err)
	}
	tmp, err := atomicfile.Create(destPath)
	if err != nil {
		return fmt.Errorf("weights: %w", err)
	}
	defer tmp.Cleanup()

	total := resp.ContentLength
	if progress != nil {
		progress(0, total)
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, h, &progressWriter{fn: progress, total: total}), io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return fail("after %d bytes: %w", n, err)
	}
	if n > limit {
		return fail("file is more than the %d-byte limit", limit)
	}
	if total >= 0 && n != total {
		return fail("got %d of %d bytes: %w", n, total, io.ErrUnexpectedEOF)
	}
	if sum := hex.EncodeToString(h.Sum(nil)); !strings.HasPrefix(sum, prefix) {
		return fail("%w: the file's SHA-256 is %s, its name says it starts with %s", ErrChecksum, sum, prefix)
	}
	if _, err := Load(tmp.Name()); err != nil {
		return fail("the downloaded file is not usable: %w", err)
	}
	if err := tmp.CloseAtomicallyReplace(); err != nil {
		return fmt.Errorf("weights: %w", err)
	}
	if err := atomicfile.SyncDir(dir); err != nil {
		return fmt.Errorf("weights: saved %s, but syncing its directory failed: %w", destPath, err)
	}
	return nil
}

// hashPrefix returns the SHA-256 prefix that the URL's or the
// destination's file name carries. If both carry one they must agree.
func hashPrefix(rawURL, destPath string) (string, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", fmt.Errorf("weights: bad URL: %w", err)
	}
	fromURL := nameHash(path.Base(u.Path))
	fromDest := nameHash(filepath.Base(destPath))
	switch {
	case fromURL == "" && fromDest == "":
		return "", fmt.Errorf("weights: cannot verify %s: neither its file name nor %s carries a SHA-256 prefix (name-<8 or more hex digits>.pth)", rawURL, filepath.Base(destPath))
	case fromDest == "" || strings.HasPrefix(fromURL, fromDest):
		return fromURL, nil
	case fromURL == "" || strings.HasPrefix(fromDest, fromURL):
		return fromDest, nil
	}
	return "", fmt.Errorf("weights: the SHA-256 prefixes in %s (%s) and %s (%s) disagree", rawURL, fromURL, destPath, fromDest)
}

func nameHash(name string) string {
	if m := hashNameRE.FindStringSubmatch(name); m != nil {
		return m[1]
	}
	return ""
}

type progressWriter struct {
	fn    func(done, total int64)
	done  int64
	total int64
}

func (p *progressWriter) Write(b []byte) (int, error) {
	p.done += int64(len(b))
	if p.fn != nil {
		p.fn(p.done, p.total)
	}
	return len(b), nil
}
