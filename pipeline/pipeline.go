package pipeline

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"
	"golang.org/x/sync/singleflight"

	"github.com/styleproxy/styleproxy/imaging"
	"github.com/styleproxy/styleproxy/plugin"
)

// keyVersion names the pipeline's own semantics in every cache key: change it when the same
// options would give different bytes (a new resize rule, a new encoder setting).
const keyVersion = "styleproxy-pipeline/1"

// ErrQueueFull is the answer to heavy work beyond the workers and the queue: 503 with
// Retry-After.
var ErrQueueFull = errors.New("too busy: the work queue is full")

// Pipeline serves images: parse the query, look up the cache, or fetch, decode, resize, filter and
// encode once for all the requests that ask for the same result at the same time. Make one with
// Mount.
type Pipeline struct {
	cfg   Config
	owner map[string]bool // every parameter someone owns
	sf    singleflight.Group
	light chan struct{} // light computation slots
	heavy chan struct{} // worker slots

	mu       sync.Mutex
	admitted int             // heavy computations admitted: waiting or running
	running  int             // heavy computations holding a worker
	jobs     map[string]*job // heavy computations by key
	inflight int             // computations of any kind
	idle     chan struct{}   // closed when inflight drops to 0
}

// Job is a heavy computation holding a worker, for progress displays.
type Job struct {
	Key  string `json:"key"`  // the cache key (the ETag without quotes)
	Path string `json:"path"` // the source image's path
	// Step of Total steps are done, as the heavy filter reports them (0 of 0 before its first).
	Step  int `json:"step"`
	Total int `json:"total"`
}

type job struct {
	key, path   string
	started     time.Time
	running     bool
	step, total atomic.Int64
}

// Mount validates cfg, makes a Pipeline and serves it on e at GET and HEAD /img/{path}.
//
// A request is answered in this order: the path is cleaned (400 if it tries to leave the
// source), the signature checked (403), the query parsed by the pipeline and each filter (400,
// or 404 for an unknown style), the source versioned (404, 403, 502, 504), the cache key
// computed; If-None-Match with the key's ETag gives 304 without any work, a cache hit is served,
// and a miss joins or starts the one computation for that key.
//
// The cache key, also the strong ETag ("<hex>"), is the SHA-256 of, each length-prefixed: the
// pipeline's key version, Config.KeySalt, the libvips version, MaxOutputPx, the source's ID (the
// folder's absolute path or the origin's base URL), the cleaned path, the source object's version
// (see Source), ImageOptions.Key (format=auto keyed by the format it picked), and each active
// filter's Name and Options.Key in Config.Filters order. Everything that changes the bytes is in
// it, so the same URL gives the same bytes, across restarts too, for as long as the source image
// is unchanged.
//
// Successful responses carry Cache-Control (Config.CacheControl), ETag, Content-Type,
// Content-Length, X-Content-Type-Options: nosniff and, for format=auto only, Vary: Accept.
// Errors are JSON ErrorBody values with Cache-Control: no-store; see Status for the codes.
func Mount(e *echo.Echo, cfg Config) (*Pipeline, error) {
	p, err := newPipeline(cfg)
	if err != nil {
		return nil, err
	}
	e.GET("/img/*", p.handle)
	e.HEAD("/img/*", p.handle)
	return p, nil
}

func newPipeline(cfg Config) (*Pipeline, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	p := &Pipeline{
		cfg:   cfg,
		owner: map[string]bool{},
		light: make(chan struct{}, cfg.LightWorkers),
		heavy: make(chan struct{}, cfg.Workers),
		jobs:  map[string]*job{},
	}
	for _, q := range coreParams {
		p.owner[q] = true
	}
	for _, f := range cfg.Filters {
		for _, q := range f.Params() {
			p.owner[q] = true
		}
	}
	return p, nil
}

// QueueFull reports whether new heavy work would be refused now (503).
func (p *Pipeline) QueueFull() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.admitted >= p.cfg.Workers+p.cfg.Queue
}

// Queued returns how many heavy computations are waiting for a worker.
func (p *Pipeline) Queued() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.admitted - p.running
}

// Running returns the heavy computations holding a worker, oldest first, with their progress.
func (p *Pipeline) Running() []Job {
	p.mu.Lock()
	var js []*job
	for _, j := range p.jobs {
		if j.running {
			js = append(js, j)
		}
	}
	p.mu.Unlock()
	sort.Slice(js, func(a, b int) bool { return js[a].started.Before(js[b].started) })
	out := make([]Job, len(js))
	for i, j := range js {
		out[i] = Job{Key: j.key, Path: j.path, Step: int(j.step.Load()), Total: int(j.total.Load())}
	}
	return out
}

// Wait blocks until no computation is running (those whose requesters left included), or ctx
// ends: call it after the HTTP server has shut down, so that finished results reach the cache.
func (p *Pipeline) Wait(ctx context.Context) error {
	for {
		p.mu.Lock()
		if p.inflight == 0 {
			p.mu.Unlock()
			return nil
		}
		idle := p.idle
		p.mu.Unlock()
		select {
		case <-idle:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// request is one parsed request.
type request struct {
	path    string
	image   ImageOptions
	filters []active
	heavy   bool
	version string // the source's version
	data    []byte // the source's bytes, when they had to be fetched to version them
	key     string
	parent  context.Context // for values; computations run detached from its cancellation
}

type active struct {
	f plugin.Filter
	o plugin.Options
}

func (p *Pipeline) handle(c echo.Context) error {
	start := time.Now()
	status := p.serve(c)
	if h := p.cfg.Hooks.OnRequest; h != nil {
		h(c.Request().Method, status, time.Since(start))
	}
	return nil
}

// statusClientGone is reported to hooks for requests whose client left before the answer.
const statusClientGone = 499

func (p *Pipeline) serve(c echo.Context) int {
	req := c.Request()
	ctx, cancel := context.WithTimeout(req.Context(), p.cfg.Timeout)
	defer cancel()

	r, err := p.prepare(ctx, c)
	if err != nil {
		return p.fail(c, ctx, err)
	}
	etag := `"` + r.key + `"`
	h := c.Response().Header()
	success := func() {
		h.Set("Cache-Control", p.cfg.CacheControl)
		h.Set("ETag", etag)
		if r.image.Auto {
			h.Add("Vary", "Accept")
		}
	}
	if etagMatch(req.Header.Get("If-None-Match"), etag) {
		success()
		c.Response().WriteHeader(http.StatusNotModified)
		return http.StatusNotModified
	}
	e, ok := p.lookup(r.key)
	if !ok {
		if e, err = p.await(ctx, r); err != nil {
			return p.fail(c, ctx, err)
		}
	}
	success()
	h.Set("Content-Type", e.ContentType)
	h.Set("Content-Length", strconv.Itoa(len(e.Body)))
	h.Set("X-Content-Type-Options", "nosniff")
	c.Response().WriteHeader(http.StatusOK)
	if req.Method != http.MethodHead {
		c.Response().Write(e.Body)
	}
	return http.StatusOK
}

// prepare parses and checks the request, versions the source and computes the cache key.
func (p *Pipeline) prepare(ctx context.Context, c echo.Context) (*request, error) {
	req := c.Request()
	raw := c.Param("*")
	if req.URL.RawPath != "" {
		u, err := url.PathUnescape(raw)
		if err != nil {
			return nil, &plugin.ParamError{Param: "path", Reason: "bad escape"}
		}
		raw = u
	}
	pth, err := CleanPath(raw)
	if err != nil {
		return nil, err
	}
	q, err := url.ParseQuery(req.URL.RawQuery)
	if err != nil {
		return nil, &plugin.ParamError{Param: "query", Reason: "malformed query string"}
	}
	if p.cfg.SigningKey != nil && !Verify(p.cfg.SigningKey, req.URL.Path, q) {
		if len(q["sig"]) == 0 {
			return nil, &ForbiddenError{Reason: "missing signature (sig)"}
		}
		return nil, &ForbiddenError{Reason: "invalid signature (sig)"}
	}
	names := make([]string, 0, len(q))
	for k := range q {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		if !p.owner[k] {
			return nil, &plugin.ParamError{Param: k, Reason: "unknown parameter"}
		}
		if len(q[k]) > 1 {
			return nil, &plugin.ParamError{Param: k, Reason: "given more than once"}
		}
	}
	r := &request{path: pth, parent: req.Context()}
	if r.image, err = ParseImageOptions(q, p.cfg.MaxOutputPx, req.Header.Get("Accept")); err != nil {
		return nil, err
	}
	for _, f := range p.cfg.Filters {
		sub := url.Values{}
		for _, k := range f.Params() {
			if v, ok := q[k]; ok {
				sub[k] = v
			}
		}
		o, err := f.Parse(ctx, sub)
		if err != nil {
			var pe *plugin.ParamError
			var nf *plugin.NotFoundError
			if errors.As(err, &pe) || errors.As(err, &nf) {
				return nil, err
			}
			return nil, fmt.Errorf("filter %s: %w", f.Name(), err)
		}
		if o != nil {
			r.filters = append(r.filters, active{f, o})
			r.heavy = r.heavy || o.Heavy()
		}
	}
	if r.version, err = p.cfg.Source.Stat(ctx, pth); err != nil {
		return nil, err
	}
	if r.version == "" { // the source cannot tell: version by content
		data, _, err := p.cfg.Source.Fetch(ctx, pth, p.cfg.MaxSourceBytes)
		if err != nil {
			return nil, err
		}
		sum := sha256.Sum256(data)
		r.version, r.data = "sha256="+hex.EncodeToString(sum[:]), data
	}
	r.key = p.cacheKey(r)
	return r, nil
}

// cacheKey is the hex SHA-256 of, each length-prefixed: the pipeline's key version, KeySalt,
// the libvips version, MaxOutputPx, the source's ID, the cleaned path, the source object's
// version, the canonical image options and each active filter's name and key, in filter order.
func (p *Pipeline) cacheKey(r *request) string {
	h := sha256.New()
	field := func(s string) {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(s)))
		h.Write(n[:])
		h.Write([]byte(s))
	}
	field(keyVersion)
	field(p.cfg.KeySalt)
	field("libvips " + imaging.VipsVersion())
	field("max-output-px " + strconv.Itoa(p.cfg.MaxOutputPx))
	field(p.cfg.Source.ID())
	field(r.path)
	field(r.version)
	field(r.image.Key())
	for _, a := range r.filters {
		field(a.f.Name())
		field(a.o.Key())
	}
	return hex.EncodeToString(h.Sum(nil))
}

// etagMatch implements If-None-Match's weak comparison against a strong etag.
func etagMatch(header, etag string) bool {
	if header == "" {
		return false
	}
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimSpace(t)
		if t == "*" || strings.TrimPrefix(t, "W/") == etag {
			return true
		}
	}
	return false
}

func (p *Pipeline) lookup(key string) (Entry, bool) {
	e, tier, ok, looked := p.cfg.Cache.get(key)
	if h := p.cfg.Hooks.OnCache; h != nil {
		for _, t := range looked {
			h(t, ok && t == tier)
		}
	}
	return e, ok
}

// await joins or starts the computation of r and waits for it or for ctx. The computation runs
// detached: it goes on (and its result is cached) when every requester has left.
func (p *Pipeline) await(ctx context.Context, r *request) (Entry, error) {
	ch := p.sf.DoChan(r.key, func() (any, error) { return p.run(r) })
	select {
	case res := <-ch:
		if res.Err != nil {
			return Entry{}, res.Err
		}
		return res.Val.(Entry), nil
	case <-ctx.Done():
		return Entry{}, ctx.Err()
	}
}

// run is one computation, shared by the requests for its key.
func (p *Pipeline) run(r *request) (e Entry, err error) {
	p.mu.Lock()
	if p.inflight == 0 {
		p.idle = make(chan struct{})
	}
	p.inflight++
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		if p.inflight--; p.inflight == 0 {
			close(p.idle)
		}
		p.mu.Unlock()
	}()
	defer func() {
		if v := recover(); v != nil {
			p.cfg.Logger.Error("panic computing an image", "path", r.path, "panic", v, "stack", string(debug.Stack()))
			err = fmt.Errorf("plugin: panic computing %s: %v", r.path, v)
		}
	}()

	// A computation that finished between this request's cache miss and its joining the flight
	// has stored its result already: computing it again would be waste.
	if e, _, ok := p.cfg.Cache.Get(r.key); ok {
		return e, nil
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.parent), p.cfg.Timeout)
	defer cancel()

	var j *job
	if r.heavy {
		if j, err = p.admit(r); err != nil {
			return Entry{}, err
		}
		defer p.finish(j)
	} else {
		select {
		case p.light <- struct{}{}:
			defer func() { <-p.light }()
		case <-ctx.Done():
			return Entry{}, ctx.Err()
		}
	}

	start := time.Now()
	if h := p.cfg.Hooks.OnWorkStart; h != nil {
		h(r.heavy)
	}
	e, cacheable, err := p.compute(ctx, r, j)
	d := time.Since(start)
	if h := p.cfg.Hooks.OnWorkEnd; h != nil {
		h(r.heavy, d, err)
	}
	if err != nil {
		p.cfg.Logger.Debug("image failed", "path", r.path, "key", r.key[:16], "duration", d, "error", err)
		return Entry{}, err
	}
	if cacheable {
		if err := p.cfg.Cache.Put(r.key, e); err != nil {
			p.cfg.Logger.Warn("caching an image failed", "path", r.path, "key", r.key[:16], "error", err)
		}
	}
	p.cfg.Logger.Info("image computed", "path", r.path, "key", r.key[:16], "heavy", r.heavy,
		"duration", d, "bytes", len(e.Body), "cached", cacheable && p.cfg.Cache != nil)
	return e, nil
}

// admit reserves a place among the workers and the queue for a heavy computation.
func (p *Pipeline) admit(r *request) (*job, error) {
	p.mu.Lock()
	if p.admitted >= p.cfg.Workers+p.cfg.Queue {
		p.mu.Unlock()
		return nil, ErrQueueFull
	}
	p.admitted++
	j := &job{key: r.key, path: r.path, started: time.Now()}
	p.jobs[r.key] = j
	depth := p.admitted - p.running
	p.mu.Unlock()
	p.queueChanged(depth)
	return j, nil
}

// work waits for a worker for j.
func (p *Pipeline) work(ctx context.Context, j *job) error {
	select {
	case p.heavy <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	p.mu.Lock()
	j.running = true
	j.started = time.Now()
	p.running++
	depth := p.admitted - p.running
	p.mu.Unlock()
	p.queueChanged(depth)
	return nil
}

// finish gives back j's worker (if it got one) and its place.
func (p *Pipeline) finish(j *job) {
	p.mu.Lock()
	if j.running {
		p.running--
		<-p.heavy
	}
	p.admitted--
	delete(p.jobs, j.key)
	depth := p.admitted - p.running
	p.mu.Unlock()
	p.queueChanged(depth)
}

func (p *Pipeline) queueChanged(depth int) {
	if h := p.cfg.Hooks.OnQueue; h != nil {
		h(depth)
	}
}

// compute makes the response for r: fetch (unless prepare did), check the header, wait for a
// worker (heavy work), decode, resize, filter, encode.
// cacheable is false when the source changed since prepare versioned it: the result is right for
// this request but not for its key.
func (p *Pipeline) compute(ctx context.Context, r *request, j *job) (_ Entry, cacheable bool, err error) {
	data, cacheable := r.data, true
	if data == nil {
		var version string
		if data, version, err = p.cfg.Source.Fetch(ctx, r.path, p.cfg.MaxSourceBytes); err != nil {
			return Entry{}, false, err
		}
		cacheable = version == r.version
	}
	// The header tells a refusal (too large, not an image) before any pixel is decoded, and
	// before heavy work waits for a worker.
	lim := imaging.Limits{MaxBytes: p.cfg.MaxSourceBytes, MaxPixels: p.cfg.MaxSourcePixels}
	info, err := imaging.Probe(data, lim)
	if err != nil {
		return Entry{}, false, err
	}
	// Heavy work decodes only once it has a worker: queued work then holds compressed bytes,
	// not decoded pixels.
	if j != nil {
		if err := p.work(ctx, j); err != nil {
			return Entry{}, false, err
		}
	}
	img, err := imaging.Decode(data, lim)
	if err != nil {
		return Entry{}, false, err
	}
	defer func() { img.Close() }()
	sw, sh := img.Size()
	if w, h, fit, ok := targetBox(sw, sh, r.image, p.cfg.MaxOutputPx); ok {
		if err := img.Resize(w, h, fit); err != nil {
			return Entry{}, false, err
		}
	}
	progress := func(k, n int) {
		if j != nil {
			j.step.Store(int64(k))
			j.total.Store(int64(n))
		}
	}
	for _, a := range r.filters {
		out, err := a.o.Apply(ctx, img, progress)
		if err != nil {
			return Entry{}, false, fmt.Errorf("filter %s: %w", a.f.Name(), err)
		}
		if out == nil {
			return Entry{}, false, fmt.Errorf("filter %s returned no image", a.f.Name())
		}
		if out != img {
			img.Close()
			img = out
		}
	}
	if err := ctx.Err(); err != nil {
		return Entry{}, false, err
	}
	format := r.image.Format
	if format == 0 {
		format = imaging.JPEG
		if info.Format != 0 && imaging.CanEncode(info.Format) {
			format = info.Format
		}
	}
	body, err := img.Encode(format, r.image.Quality)
	if err != nil {
		return Entry{}, false, err
	}
	return Entry{ContentType: format.MIMEType(), Body: body}, cacheable, nil
}

// Status maps an error from the pipeline, a source or a filter to its HTTP status and the
// message for the client:
//
//	*plugin.ParamError                                  400 (the message names the parameter)
//	*ForbiddenError                              403 (bad signature, symlink out of the folder,
//	                                                  origin at a private address)
//	*plugin.NotFoundError                               404 (missing source image, unknown style)
//	imaging.ErrTooLarge                          413 (MaxSourceBytes, MaxSourcePixels)
//	imaging.ErrNotImage, ErrUnsupportedFormat,
//	ErrZeroSize                                  415
//	ErrQueueFull                                 503 (with Retry-After)
//	context.DeadlineExceeded                     504 (Timeout, the origin's timeouts)
//	*OriginError                                 502
//	anything else                                500 ("internal error"; details only in the log)
func Status(err error) (int, string) {
	var (
		pe *plugin.ParamError
		nf *plugin.NotFoundError
		fe *ForbiddenError
		oe *OriginError
	)
	switch {
	case errors.As(err, &pe):
		return http.StatusBadRequest, pe.Error()
	case errors.As(err, &fe):
		return http.StatusForbidden, fe.Error()
	case errors.As(err, &nf):
		return http.StatusNotFound, nf.Error()
	case errors.Is(err, imaging.ErrTooLarge):
		return http.StatusRequestEntityTooLarge, clientMessage(err)
	case errors.Is(err, imaging.ErrNotImage), errors.Is(err, imaging.ErrUnsupportedFormat), errors.Is(err, imaging.ErrZeroSize):
		return http.StatusUnsupportedMediaType, clientMessage(err)
	case errors.Is(err, ErrQueueFull):
		return http.StatusServiceUnavailable, ErrQueueFull.Error()
	case errors.Is(err, context.DeadlineExceeded):
		return http.StatusGatewayTimeout, "timed out"
	case errors.As(err, &oe):
		return http.StatusBadGateway, "origin failure: " + oe.Msg
	}
	return http.StatusInternalServerError, "internal error"
}

// clientMessage is an imaging error without its package prefixes.
func clientMessage(err error) string {
	return strings.ReplaceAll(err.Error(), "imaging: ", "")
}

// fail answers the request with err's status and JSON body.
func (p *Pipeline) fail(c echo.Context, ctx context.Context, err error) int {
	if errors.Is(err, context.Canceled) && c.Request().Context().Err() != nil {
		return statusClientGone // nobody to answer
	}
	if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil && c.Request().Context().Err() != nil {
		return statusClientGone
	}
	status, msg := Status(err)
	h := c.Response().Header()
	h.Set("Cache-Control", "no-store")
	if status == http.StatusServiceUnavailable {
		h.Set("Retry-After", strconv.Itoa(max(1, int(p.cfg.RetryAfter.Round(time.Second)/time.Second))))
	}
	lvl := slog.LevelDebug
	if status >= 500 {
		lvl = slog.LevelWarn
		if status == http.StatusInternalServerError {
			lvl = slog.LevelError
		}
	}
	p.cfg.Logger.Log(ctx, lvl, "image request failed", "path", c.Request().URL.Path, "status", status, "error", err)
	if werr := WriteError(c, status, msg); werr != nil {
		p.cfg.Logger.Debug("writing an error response failed", "error", werr)
	}
	return status
}
