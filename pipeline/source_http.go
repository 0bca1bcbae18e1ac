package pipeline

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"

	"code.dny.dev/ssrf"
	"github.com/styleproxy/styleproxy/imaging"
)

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
