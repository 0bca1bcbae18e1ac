package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"code.dny.dev/ssrf"

	"github.com/styleproxy/styleproxy/imaging"
	"github.com/styleproxy/styleproxy/plugin"
)

// Source is where the images named by /img/{path} come from: a local folder (DirSource) or an
// HTTP origin (HTTPSource). Paths given to a Source are already cleaned by the pipeline: relative,
// slash-separated, without "." or ".." segments.
//
// A Source reports a version for each object, a short string that changes whenever the object's
// bytes change; the version goes into the cache key, so a changed source image gets a new key
// (and a new ETag) while an unchanged one is served from the cache without being read.
type Source interface {
	// ID identifies the source in cache keys: the folder's absolute path, the origin's base URL.
	ID() string
	// Stat returns the version of the object at path without reading it where the source can.
	// An empty version means the source cannot tell cheaply; the pipeline then fetches the
	// object and uses a hash of its bytes.
	Stat(ctx context.Context, path string) (version string, err error)
	// Fetch returns the object's bytes, refusing more than maxBytes (if positive) with an error
	// wrapping imaging.ErrTooLarge, and its version as Stat gives it ("" as in Stat).
	Fetch(ctx context.Context, path string, maxBytes int64) (data []byte, version string, err error)
}

// ForbiddenError is a request the pipeline refuses to serve (a symlink out of the source folder,
// an origin address in a private range, a missing or wrong signature); it is answered with 403.
type ForbiddenError struct{ Reason string }

func (e *ForbiddenError) Error() string   { return "forbidden: " + e.Reason }
func (e *ForbiddenError) HTTPStatus() int { return http.StatusForbidden }

// OriginError is an HTTP origin that failed: it could not be reached, answered with an error
// status, or redirected too often or elsewhere; it is answered with 502. Timeouts are not
// OriginErrors: they are answered with 504.
type OriginError struct {
	Msg string // for the client: says what failed without naming the origin
	Err error  // the cause, for logs
}

func (e *OriginError) Error() string {
	if e.Err != nil {
		return "origin failure: " + e.Msg + ": " + e.Err.Error()
	}
	return "origin failure: " + e.Msg
}

func (e *OriginError) Unwrap() error         { return e.Err }
func (e *OriginError) HTTPStatus() int       { return http.StatusBadGateway }
func (e *OriginError) PublicMessage() string { return "origin failure: " + e.Msg }

func notFound(path string) error {
	return &plugin.NotFoundError{What: fmt.Sprintf("source image %q", path)}
}

// DirSource serves images from a local folder. Every access goes through an os.Root, so no path,
// however it is spelt, and no symbolic link can reach a file outside the folder: such paths are
// refused with a ForbiddenError (403). Symbolic links inside the folder work if they are relative
// (os.Root refuses absolute link targets).
//
// Versions are the file's size and modification time (nanoseconds): cheap (one stat a request,
// so a cache hit never reads the file) and changed by any ordinary rewrite of the file. A rewrite
// that keeps both the size and the modification time is not noticed.
type DirSource struct {
	dir  string
	root *os.Root
}

// NewDirSource opens dir (which must exist and be a folder) as a Source. The folder is held open:
// if it is renamed, the source follows it.
func NewDirSource(dir string) (*DirSource, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("plugin: source folder %s: %w", dir, err)
	}
	root, err := os.OpenRoot(abs)
	if err != nil {
		return nil, fmt.Errorf("plugin: source folder: %w", err)
	}
	return &DirSource{dir: abs, root: root}, nil
}

// ID returns "dir:" and the folder's absolute path.
func (s *DirSource) ID() string { return "dir:" + s.dir }

// Dir returns the folder's absolute path.
func (s *DirSource) Dir() string { return s.dir }

// Close releases the folder.
func (s *DirSource) Close() error { return s.root.Close() }

func fileVersion(fi fs.FileInfo) string {
	return strconv.FormatInt(fi.Size(), 10) + "-" + strconv.FormatInt(fi.ModTime().UnixNano(), 10)
}

// dirError classifies an os.Root error: missing files and non-folders on the way are 404,
// escapes (which os.Root reports as a non-errno error) and permission errors are 403.
func (s *DirSource) dirError(path string, err error) error {
	var errno syscall.Errno
	switch {
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, syscall.ENOTDIR), errors.Is(err, syscall.ENAMETOOLONG):
		return notFound(path)
	case errors.Is(err, fs.ErrPermission):
		return &ForbiddenError{Reason: fmt.Sprintf("source image %q is not readable", path)}
	case !errors.As(err, &errno):
		// os.Root's "path escapes from parent": a symbolic link out of the folder.
		return &ForbiddenError{Reason: fmt.Sprintf("source path %q leads outside the source folder", path)}
	}
	return fmt.Errorf("plugin: source folder: %w", err)
}

// hidden reports whether a path names a dotfile or passes through a dot-folder (.git, .env):
// such files are never served, and answer as missing rather than betray that they exist.
func hidden(path string) bool {
	for _, seg := range strings.Split(path, "/") {
		if strings.HasPrefix(seg, ".") {
			return true
		}
	}
	return false
}

// Stat returns the file's version.
func (s *DirSource) Stat(_ context.Context, path string) (string, error) {
	if hidden(path) {
		return "", notFound(path)
	}
	fi, err := s.root.Stat(path)
	if err != nil {
		return "", s.dirError(path, err)
	}
	if !fi.Mode().IsRegular() {
		return "", notFound(path)
	}
	return fileVersion(fi), nil
}

// Fetch reads the file.
func (s *DirSource) Fetch(_ context.Context, path string, maxBytes int64) ([]byte, string, error) {
	if hidden(path) {
		return nil, "", notFound(path)
	}
	f, err := s.root.Open(path)
	if err != nil {
		return nil, "", s.dirError(path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, "", fmt.Errorf("plugin: source folder: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, "", notFound(path)
	}
	if maxBytes > 0 && fi.Size() > maxBytes {
		return nil, "", fmt.Errorf("%w: source image is %d bytes, over the limit of %d bytes", imaging.ErrTooLarge, fi.Size(), maxBytes)
	}
	data, err := readLimited(f, maxBytes)
	if err != nil {
		return nil, "", err
	}
	return data, fileVersion(fi), nil
}

// readLimited reads r to the end, refusing more than max bytes (if positive).
func readLimited(r io.Reader, max int64) ([]byte, error) {
	if max > 0 {
		r = io.LimitReader(r, max+1)
	}
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	if max > 0 && int64(len(data)) > max {
		return nil, fmt.Errorf("%w: source image is over the limit of %d bytes", imaging.ErrTooLarge, max)
	}
	return data, nil
}

// HTTPSourceOptions configure an HTTPSource. Zero fields take the defaults given.
type HTTPSourceOptions struct {
	// AllowPrivate lets the origin resolve to addresses in IANA's special-purpose ranges
	// (loopback, private, shared 100.64.0.0/10, link-local, reserved, NAT64, 6to4, ...) and
	// outside IPv6's global unicast range. Off, connections to them are refused (403), which
	// keeps a request from reaching internal services through the origin's DNS.
	AllowPrivate bool
	// MaxBytes caps a source image's size; 0 leaves it to the pipeline's MaxSourceBytes (the
	// smaller of the two applies).
	MaxBytes int64
	// ConnectTimeout bounds connecting (and the TLS handshake): default 5 s.
	ConnectTimeout time.Duration
	// TotalTimeout bounds one request to the origin, body included: default 30 s.
	TotalTimeout time.Duration
	// MaxRedirects is how many redirects a request may follow (default 3; negative: none).
	// Every redirect must stay on the configured origin (scheme, host and port), and every
	// connection's address is checked as above.
	MaxRedirects int
	// VersionTTL is how long an image's version, read from the origin's validators, is trusted
	// before the origin is asked again (0 = ask on every request). A change at the origin is
	// served once it expires.
	VersionTTL time.Duration
	// NotFoundTTL is how long a 404 or 410 from the origin is remembered (0 = not at all).
	NotFoundTTL time.Duration
}

// HTTPSource fetches images from one HTTP(S) origin: /img/{path} is {base}{path}.
//
// Versions come from the origin's validators: a strong ETag, or a weak ETag or Last-Modified
// together with the Content-Length, read with a HEAD request (one a request, so a cache hit costs
// a HEAD but never a download). An origin that sends none of them, or does not answer HEAD,
// has its images fetched on every request and versioned by the SHA-256 of their bytes.
//
// Origin answers map to: 404 and 410 to a NotFoundError (404), other error statuses and
// failures to an OriginError (502), timeouts to 504, an image over the size limit to
// imaging.ErrTooLarge (413).
type HTTPSource struct {
	base    *url.URL
	opts    HTTPSourceOptions
	client  *http.Client
	answers *originAnswers // nil: ask the origin every time
}

// NewHTTPSource makes a source for the origin base ("https://origin.example/images/"): an
// http or https URL with a host and no query; a missing final slash is added. An origin given as
// a private IP address is refused unless opts.AllowPrivate.
func NewHTTPSource(base string, opts HTTPSourceOptions) (*HTTPSource, error) {
	u, err := url.Parse(base)
	if err != nil {
		return nil, fmt.Errorf("plugin: origin %q: %w", base, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("plugin: origin %q: want an http or https URL", base)
	}
	if u.Host == "" || u.Hostname() == "" {
		return nil, fmt.Errorf("plugin: origin %q has no host", base)
	}
	if u.RawQuery != "" || u.Fragment != "" || u.ForceQuery {
		return nil, fmt.Errorf("plugin: origin %q: a base URL takes no query or fragment", base)
	}
	if !strings.HasSuffix(u.Path, "/") {
		u.Path += "/"
		if u.RawPath != "" {
			u.RawPath += "/"
		}
	}
	if opts.ConnectTimeout <= 0 {
		opts.ConnectTimeout = 5 * time.Second
	}
	if opts.TotalTimeout <= 0 {
		opts.TotalTimeout = 30 * time.Second
	}
	switch {
	case opts.MaxRedirects == 0:
		opts.MaxRedirects = 3
	case opts.MaxRedirects < 0:
		opts.MaxRedirects = 0
	}
	guard := ssrf.New(ssrf.WithAnyPort())
	if !opts.AllowPrivate {
		if ip, err := netip.ParseAddr(strings.Trim(u.Hostname(), "[]")); err == nil {
			if err := guard.SafeAddr(ip); err != nil {
				return nil, fmt.Errorf("plugin: origin %q is not a public address (allow private sources to use it): %w", base, err)
			}
		}
	}
	s := &HTTPSource{base: u, opts: opts, answers: newOriginAnswers(opts.VersionTTL, opts.NotFoundTTL)}
	dialer := &net.Dialer{Timeout: opts.ConnectTimeout}
	if !opts.AllowPrivate {
		// Control sees the resolved address of every connection, redirects included, so a
		// hostname that resolves (or rebinds) to an internal address is caught. The ranges are
		// IANA's special-purpose registries, as code.dny.dev/ssrf maintains them.
		dialer.Control = func(network, address string, c syscall.RawConn) error {
			if err := guard.Safe(network, address, c); err != nil {
				return &ForbiddenError{Reason: "the origin's address is not public (" + err.Error() + ")"}
			}
			return nil
		}
	}
	transport := &http.Transport{
		Proxy:                 nil, // a proxy would connect for us, past the address check
		DialContext:           dialer.DialContext,
		TLSHandshakeTimeout:   opts.ConnectTimeout,
		ResponseHeaderTimeout: opts.TotalTimeout,
		MaxIdleConns:          64,
		MaxIdleConnsPerHost:   16,
		IdleConnTimeout:       90 * time.Second,
		ForceAttemptHTTP2:     true,
	}
	s.client = &http.Client{
		Transport: transport,
		Timeout:   opts.TotalTimeout,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) > opts.MaxRedirects {
				return &OriginError{Msg: fmt.Sprintf("more than %d redirects", opts.MaxRedirects)}
			}
			if req.URL.Scheme != s.base.Scheme || !strings.EqualFold(req.URL.Host, s.base.Host) {
				return &OriginError{Msg: "redirect away from the configured origin"}
			}
			return nil
		},
	}
	return s, nil
}

// ID returns "http:" and the base URL.
func (s *HTTPSource) ID() string { return "http:" + s.base.String() }

// urlFor returns the origin URL of a cleaned image path, each segment escaped.
func (s *HTTPSource) urlFor(path string) string {
	u := *s.base
	segs := strings.Split(path, "/")
	for i, seg := range segs {
		segs[i] = url.PathEscape(seg)
	}
	u.Path = s.base.Path + path
	u.RawPath = s.base.EscapedPath() + strings.Join(segs, "/")
	return u.String()
}

// do sends one request to the origin and classifies the failures.
func (s *HTTPSource) do(ctx context.Context, method, path string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, s.urlFor(path), nil)
	if err != nil {
		return nil, fmt.Errorf("plugin: origin request: %w", err)
	}
	req.Header.Set("Accept", "image/*")
	req.Header.Set("User-Agent", "styleproxy")
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, originErr(err)
	}
	switch {
	case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusGone:
		resp.Body.Close()
		return nil, notFound(path)
	case resp.StatusCode == http.StatusMethodNotAllowed || resp.StatusCode == http.StatusNotImplemented:
		if method == http.MethodHead {
			resp.Body.Close()
			return nil, errNoHead
		}
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		resp.Body.Close()
		return nil, &OriginError{Msg: fmt.Sprintf("the origin answered %d", resp.StatusCode)}
	}
	return resp, nil
}

var errNoHead = errors.New("origin does not answer HEAD")

// originErr classifies a transport error: refusals and redirect failures keep their type,
// timeouts stay timeouts (504), the rest become OriginErrors (502).
func originErr(err error) error {
	var fe *ForbiddenError
	var oe *OriginError
	var ne net.Error
	switch {
	case errors.As(err, &fe):
		return fe
	case errors.As(err, &oe):
		return oe
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return err
	case errors.As(err, &ne) && ne.Timeout():
		return fmt.Errorf("%w: origin: %w", context.DeadlineExceeded, err)
	}
	return &OriginError{Msg: "the origin could not be reached", Err: err}
}

// httpVersion builds a version from the response's validators, or "".
func httpVersion(h http.Header, contentLength int64) string {
	etag := h.Get("ETag")
	length := ""
	if contentLength >= 0 {
		length = ";len=" + strconv.FormatInt(contentLength, 10)
	}
	switch {
	case etag != "" && !strings.HasPrefix(etag, "W/"):
		return "etag=" + etag
	case etag != "" && length != "":
		return "etag=" + etag + length
	case h.Get("Last-Modified") != "" && length != "":
		return "lm=" + h.Get("Last-Modified") + length
	}
	return ""
}

// Stat asks the origin for the image's validators with a HEAD request, unless its answer is
// remembered (VersionTTL, NotFoundTTL).
func (s *HTTPSource) Stat(ctx context.Context, path string) (string, error) {
	if v, err, ok := s.answers.lookup(path); ok {
		return v, err
	}
	v, err := s.head(ctx, path)
	s.answers.remember(path, v, err)
	return v, err
}

func (s *HTTPSource) head(ctx context.Context, path string) (string, error) {
	resp, err := s.do(ctx, http.MethodHead, path)
	if errors.Is(err, errNoHead) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	resp.Body.Close()
	return httpVersion(resp.Header, resp.ContentLength), nil
}

// Fetch downloads the image.
func (s *HTTPSource) Fetch(ctx context.Context, path string, maxBytes int64) ([]byte, string, error) {
	if s.opts.MaxBytes > 0 && (maxBytes <= 0 || s.opts.MaxBytes < maxBytes) {
		maxBytes = s.opts.MaxBytes
	}
	resp, err := s.do(ctx, http.MethodGet, path)
	if err != nil {
		s.answers.remember(path, "", err) // a 404 is remembered; nothing else is
		return nil, "", err
	}
	defer resp.Body.Close()
	if maxBytes > 0 && resp.ContentLength > maxBytes {
		return nil, "", fmt.Errorf("%w: source image is %d bytes, over the limit of %d bytes", imaging.ErrTooLarge, resp.ContentLength, maxBytes)
	}
	data, err := readLimited(resp.Body, maxBytes)
	if err != nil {
		if errors.Is(err, imaging.ErrTooLarge) {
			return nil, "", err
		}
		return nil, "", originErr(err)
	}
	return data, httpVersion(resp.Header, int64(len(data))), nil
}
