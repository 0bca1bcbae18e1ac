// Package server is styleproxy's HTTP application: it opens the weights, the engine and the style
// library, mounts the image pipeline (package pipeline) with the style and grayscale filters, the
// style library's API, health checks and metrics on one Echo server, and shuts down gracefully.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/styleproxy/styleproxy/cluster"
	"github.com/styleproxy/styleproxy/engine"
	"github.com/styleproxy/styleproxy/filters/style"
	"github.com/styleproxy/styleproxy/pipeline"
	"github.com/styleproxy/styleproxy/styles"
	"github.com/styleproxy/styleproxy/weights"
)

// Config is everything `styleproxy serve` can be told: each tagged field is a flag of that
// name (the CLI reads the tags), with DefaultConfig's value as its default.
type Config struct {
	Addr      string `help:"listen address"`
	AdminAddr string `placeholder:"HOST:PORT" help:"listen address of the admin API, /metrics and /api/progress (default: the --addr listener)"`

	ReadTimeout  time.Duration `help:"time to read a whole request, an upload included"`
	WriteTimeout time.Duration `help:"time to write an answer; /img answers get --timeout more"`
	IdleTimeout  time.Duration `help:"how long an idle keep-alive connection stays open"`
	DataDir      string        `name:"data" help:"data folder: the style library, and the disk cache unless --cache-dir"`
	Source       string        `help:"where /img/{path} comes from: a folder, or an http(s) origin URL"`
	Weights      string        `placeholder:"FILE" help:"SqueezeNet 1.1 checkpoint (or a folder holding one); else the user cache"`
	Backend      string        `help:"GoMLX backend: auto, go, xla:cpu, xla:cuda"`

	Workers     int           `help:"stylizations running at once"`
	Queue       int           `help:"stylizations waiting for a worker (0 = none); beyond that requests get 503"`
	Timeout     time.Duration `help:"how long a request waits for its image (504 after it; the work goes on and is cached)"`
	WorkTimeout time.Duration `help:"time limit for a computation once it holds a worker (queue time not counted)"`

	MaxIters     int    `help:"largest iters a URL may ask for"`
	DefaultIters int    `help:"iters when a URL gives none"`
	MaxWorkPx    int    `help:"longest side the optimisation runs at; outputs are resized from it (0 = 256, or 512 on a CUDA GPU)"`
	WorkStep     int    `help:"the shorter side of a work shape is a multiple of this; fewer shapes to compile, larger aspect error"`
	MaxOutputPx  int    `help:"largest w or h a URL may ask for"`
	Presets      string `placeholder:"FILE" help:"named parameter sets for preset=NAME, one a line: NAME: w=400&h=300&fit=cover"`

	MaxSourceMB         int           `name:"max-source-mb" help:"largest source image in MB"`
	MaxSourceMP         int           `name:"max-source-mp" help:"largest source image in megapixels (checked before decoding)"`
	MaxSourceSide       int           `help:"longest side of a source image in pixels (checked before decoding)"`
	AllowPrivateSources bool          `help:"let an HTTP origin resolve to addresses in IANA's special-purpose ranges (loopback, private, shared, link-local, ...)"`
	OriginTTL           time.Duration `name:"origin-ttl" help:"how long an HTTP origin's answers are trusted: image versions, and 404s for at most 10s (0 = ask on every request)"`

	CacheMemMB           int    `name:"cache-mem-mb" help:"in-memory cache budget in MB (0 = off)"`
	CacheDir             string `placeholder:"DIR" help:"disk cache folder (default DATA/cache)"`
	CacheDiskMB          int    `name:"cache-disk-mb" help:"disk cache budget in MB (0 = off)"`
	CacheControl         string `help:"Cache-Control of image responses whose URL pins everything (style=NAME@VERSION, or no style)"`
	CacheControlUnpinned string `help:"Cache-Control of image responses that follow a style's current version (style=NAME)"`

	SigningKey     string `help:"require URLs signed with this key (prefer the environment variable or --signing-key-file)"`
	SigningKeyFile string `placeholder:"FILE" help:"read the signing key from this file"`
	AdminToken     string `help:"bearer token for /admin (prefer the environment variable or --admin-token-file; unset = admin API off)"`
	AdminTokenFile string `placeholder:"FILE" help:"read the admin token from this file"`
	MaxUploadMB    int    `name:"max-upload-mb" help:"largest style upload in MB"`
	MaxUploadMP    int    `name:"max-upload-mp" help:"largest style upload in megapixels"`

	NATS          string        `name:"nats" placeholder:"URL" help:"scale out on this NATS JetStream cluster: style library, shared result tier and work queue (tls:// for TLS; unset = one host)"`
	NATSCreds     string        `name:"nats-creds" placeholder:"FILE" help:"NATS credentials file (user JWT and seed)"`
	NATSReplicas  int           `name:"nats-replicas" help:"copies JetStream keeps of each bucket and stream it creates (3 on a three-node cluster)"`
	NATSResultTTL time.Duration `name:"nats-result-ttl" help:"how long the shared result tier keeps a result (0 = until --nats-result-mb is full)"`
	NATSResultMB  int           `name:"nats-result-mb" help:"the shared result tier's budget in MB (0 = unbounded); when full, results are served but not shared until the TTL frees room"`

	Logger *slog.Logger `kong:"-"`
}

// maxNotFoundTTL bounds how long an origin's 404 is remembered: an image uploaded after a miss
// should not stay missing for long.
const maxNotFoundTTL = 10 * time.Second

// DefaultConfig is what `serve` runs with when no flag says otherwise.
func DefaultConfig() Config {
	p := pipeline.NewDefaultConfig() // the pipeline's settings keep the pipeline's defaults
	return Config{
		Addr: ":8080", ReadTimeout: 60 * time.Second, WriteTimeout: 30 * time.Second, IdleTimeout: 60 * time.Second,
		DataDir: "./data", Source: "./images", Backend: engine.BackendAuto,
		Workers: p.Workers, Queue: p.Queue, Timeout: p.Timeout, WorkTimeout: p.WorkTimeout,
		MaxIters: style.DefaultMaxIters, DefaultIters: style.DefaultDefaultIters,
		WorkStep: style.DefaultWorkStep, MaxOutputPx: p.MaxOutputPx,
		MaxSourceMB: int(p.MaxSourceBytes >> 20), MaxSourceMP: int(p.MaxSourcePixels / 1_000_000), MaxSourceSide: p.MaxSourceSide,
		OriginTTL:  time.Minute,
		CacheMemMB: 256, CacheDiskMB: 2048, CacheControl: p.CacheControl,
		CacheControlUnpinned: p.CacheControlUnpinned,
		MaxUploadMB:          20, MaxUploadMP: 40, NATSReplicas: 1, NATSResultTTL: 24 * time.Hour,
	}
}

// Validate checks the configuration before anything is opened, with messages naming the flag.
func (c *Config) Validate() error {
	var errs []error
	bad := func(flag, format string, args ...any) {
		errs = append(errs, fmt.Errorf("--%s: %s", flag, fmt.Sprintf(format, args...)))
	}
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		bad("addr", "%q is not host:port (e.g. :8080)", c.Addr)
	}
	if c.AdminAddr != "" {
		if _, _, err := net.SplitHostPort(c.AdminAddr); err != nil || c.AdminAddr == c.Addr {
			bad("admin-addr", "%q is not host:port, or is --addr itself", c.AdminAddr)
		}
	}
	for _, d := range []struct {
		flag string
		v    time.Duration
	}{{"read-timeout", c.ReadTimeout}, {"write-timeout", c.WriteTimeout}, {"idle-timeout", c.IdleTimeout}} {
		if d.v <= 0 {
			bad(d.flag, "must be positive, got %s", d.v)
		}
	}
	errs = append(errs, c.componentProblems()...)
	for _, p := range []struct {
		flag string
		v    int
	}{{"max-upload-mb", c.MaxUploadMB}, {"max-upload-mp", c.MaxUploadMP}} {
		if p.v < 1 {
			bad(p.flag, "must be at least 1, got %d", p.v)
		}
	}
	for _, p := range []struct {
		flag string
		v    int
	}{{"cache-mem-mb", c.CacheMemMB}, {"cache-disk-mb", c.CacheDiskMB}} {
		if p.v < 0 {
			bad(p.flag, "must be 0 or more, got %d", p.v)
		}
	}
	if c.OriginTTL < 0 {
		bad("origin-ttl", "must be 0 or more, got %s", c.OriginTTL)
	}
	if c.Source == "" {
		bad("source", "is required: a folder or an http(s) URL")
	} else if isURL(c.Source) {
		if !strings.HasPrefix(c.Source, "http://") && !strings.HasPrefix(c.Source, "https://") {
			bad("source", "%q: only http and https origins", c.Source)
		}
	} else if st, err := os.Stat(c.Source); err != nil || !st.IsDir() {
		bad("source", "%q is not a folder", c.Source)
	}
	errs = append(errs, c.clusterProblems()...)
	if c.SigningKey != "" && c.SigningKeyFile != "" {
		bad("signing-key-file", "give the signing key once, either --signing-key or --signing-key-file")
	}
	return errors.Join(errs...)
}

func isURL(s string) bool { return strings.Contains(s, "://") }

// readSecret reads a token or key from a file, trimming the trailing newline editors add.
func readSecret(flag, path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("--%s: %w", flag, err)
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "", fmt.Errorf("--%s: %s is empty", flag, path)
	}
	return s, nil
}

// Server is a configured styleproxy, ready to serve.
type Server struct {
	Echo     *echo.Echo // the public listener's app
	Admin    *echo.Echo // the admin API, /metrics and /api/progress: Echo itself without --admin-addr
	Pipeline *pipeline.Pipeline
	Library  *styles.Library
	Engine   *engine.Engine
	Weights  *weights.Checkpoint
	style    *style.Filter
	cfg      Config
	log      *slog.Logger
	metrics  *metrics
	cluster  *cluster.Conn // nil without --nats
}

// New opens everything the configuration names. Errors say which setting is wrong.
func New(cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	if cfg.AdminTokenFile != "" {
		tok, err := readSecret("admin-token-file", cfg.AdminTokenFile)
		if err != nil {
			return nil, err
		}
		cfg.AdminToken = tok
	}
	if cfg.SigningKeyFile != "" {
		key, err := readSecret("signing-key-file", cfg.SigningKeyFile)
		if err != nil {
			return nil, err
		}
		cfg.SigningKey = key
	}
	eng, ck, err := OpenEngine(cfg.Weights, cfg.Backend)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return nil, fmt.Errorf("--data: %w", err)
	}
	cl, lib, err := openLibrary(cfg, eng, log)
	if err != nil {
		return nil, err
	}
	m := newMetrics()
	sc := cfg.styleConfig(eng.OnCUDA())
	cfg.MaxWorkPx = sc.MaxWorkPx
	sc.OnIterations = m.onIterations
	sc.OnWarm = func(b engine.Bucket, d time.Duration, err error) {
		if err != nil {
			log.Error("compiling a work shape failed", "shape", b.String(), "error", err.Error())
			return
		}
		log.Info("compiled a work shape", "shape", b.String(), "seconds", d.Seconds())
	}
	styleFilter, err := style.New(lib, eng, sc)
	if err != nil {
		return nil, fmt.Errorf("--work-step: %w", err)
	}
	var source pipeline.Source
	if isURL(cfg.Source) {
		source, err = pipeline.NewHTTPSource(cfg.Source, pipeline.HTTPSourceOptions{
			AllowPrivate: cfg.AllowPrivateSources, MaxBytes: int64(cfg.MaxSourceMB) << 20,
			VersionTTL: cfg.OriginTTL, NotFoundTTL: min(cfg.OriginTTL, maxNotFoundTTL),
		})
	} else {
		source, err = pipeline.NewDirSource(cfg.Source)
	}
	if err != nil {
		return nil, fmt.Errorf("--source: %w", err)
	}
	cacheDir := cfg.CacheDir
	if cacheDir == "" {
		cacheDir = filepath.Join(cfg.DataDir, "cache")
	}
	cc := pipeline.CacheConfig{MemBytes: int64(cfg.CacheMemMB) << 20}
	if cfg.CacheDiskMB > 0 {
		cc.Dir, cc.DiskBytes = cacheDir, int64(cfg.CacheDiskMB)<<20
	}
	if cl != nil {
		if cc.Shared, err = openResults(cfg, cl); err != nil {
			return nil, err
		}
	}
	var cache *pipeline.Cache
	if cc.MemBytes > 0 || cc.Dir != "" || cc.Shared != nil {
		if cache, err = pipeline.NewCache(cc); err != nil {
			return nil, fmt.Errorf("--cache-dir: %w", err)
		}
	}

	e := newEcho(cfg, log, m)
	admin := e
	if cfg.AdminAddr != "" {
		admin = newEcho(cfg, log, m)
	}

	s := &Server{Echo: e, Admin: admin, Library: lib, Engine: eng, Weights: ck, style: styleFilter, cfg: cfg, log: log, metrics: m, cluster: cl}
	pc := cfg.pipelineConfig()
	pc.Source = source
	pc.Filters = filters(styleFilter)
	if pc.Presets, err = loadPresets(cfg.Presets); err != nil {
		return nil, err
	}
	pc.Cache = cache
	pc.KeySalt = "weights=" + ck.Hash + ";engine=" + engine.Version
	pc.Logger = log
	pc.Hooks = m.hooks()
	s.Pipeline, err = pipeline.Mount(e, pc)
	if err != nil {
		return nil, err
	}
	MountStyles(e, lib, StylesConfig{Admin: admin,
		AdminToken: cfg.AdminToken, MaxUploadBytes: int64(cfg.MaxUploadMB) << 20,
		MaxUploadPixels: int64(cfg.MaxUploadMP) * 1_000_000, Logger: log,
	})
	admin.GET("/metrics", m.handler())
	mountGallery(e, admin, s.Pipeline, source, cfg.SigningKey != "", log)
	for _, a := range []*echo.Echo{e, admin} {
		a.GET("/healthz", s.healthz)
		a.GET("/readyz", s.readyz)
	}
	m.setRoutes(append(e.Routes(), admin.Routes()...))
	return s, nil
}

func (s *Server) healthz(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
}

// GPUMaxWorkPx is the work size on a CUDA backend unless --max-work-px says otherwise: a GPU
// runs 200 iterations at 512 px in about a second (see README).
const GPUMaxWorkPx = 512

// workPx resolves --max-work-px: 0 picks the backend's default.
func workPx(flag int, onCUDA bool) int {
	switch {
	case flag != 0:
		return flag
	case onCUDA:
		return GPUMaxWorkPx
	}
	return style.DefaultMaxWorkPx
}

// StartWarmup compiles every work shape in the background (Run calls it); until it is done,
// /readyz answers 503 naming the shapes still to compile.
func (s *Server) StartWarmup() {
	s.log.Info("compiling the work shapes", "max_work_px", s.cfg.MaxWorkPx,
		"shapes", len(engine.Buckets(s.cfg.MaxWorkPx, s.cfg.WorkStep)))
	s.style.StartWarmup()
}

// readyz is ready when every work shape is compiled, the weights and the library are loaded and
// the queue has room.
func (s *Server) readyz(c echo.Context) error {
	if warming := s.style.Warming(); len(warming) > 0 {
		c.Response().Header().Set("Cache-Control", "no-store")
		return c.JSON(http.StatusServiceUnavailable, map[string]any{
			"error":  fmt.Sprintf("warming up: %d work shapes left to compile", len(warming)),
			"status": http.StatusServiceUnavailable, "warming": warming,
		})
	}
	if s.cluster != nil {
		if err := s.cluster.Healthy(); err != nil {
			return pipeline.WriteError(c, http.StatusServiceUnavailable, err.Error())
		}
	}
	if _, err := s.Library.List(); err != nil {
		return pipeline.WriteError(c, http.StatusServiceUnavailable, "style library unavailable: "+err.Error())
	}
	if s.Pipeline.QueueFull() {
		return pipeline.WriteError(c, http.StatusServiceUnavailable, "stylization queue is full")
	}
	return c.JSON(http.StatusOK, map[string]any{"status": "ready", "backend": s.Engine.Backend(), "weights": s.Weights.Hash})
}

// Run serves until ctx ends, then drains for up to drain: in-flight requests finish, and so
// does detached work (whose requesters timed out or left), which reaches the cache. It returns
// only when both are done (or drain is over), so the caller may shut libvips down after it.
func (s *Server) Run(ctx context.Context, ln net.Listener, drain time.Duration) error {
	s.StartWarmup()
	serveCtx, stop := context.WithCancel(ctx)
	defer stop()
	var once sync.Once
	drainCtx, cancelDrain := context.Background(), context.CancelFunc(func() {})
	defer func() { cancelDrain() }()
	drainBy := func() context.Context { // one deadline for both listeners and the detached work
		once.Do(func() { drainCtx, cancelDrain = context.WithTimeout(context.Background(), drain) })
		return drainCtx
	}
	adminErr := make(chan error, 1)
	if s.Admin != s.Echo {
		aln, err := net.Listen("tcp", s.cfg.AdminAddr)
		if err != nil {
			return fmt.Errorf("--admin-addr: %w", err)
		}
		s.log.Info("admin listener", "addr", aln.Addr().String())
		go func() {
			err := s.cfg.serve(serveCtx, aln, s.Admin, drainBy)
			stop() // the public listener does not outlive the admin one
			adminErr <- err
		}()
	} else {
		adminErr <- nil
	}
	s.log.Info("styleproxy serving", "addr", ln.Addr().String(), "backend", s.Engine.Backend(),
		"source", s.cfg.Source, "data", s.cfg.DataDir, "workers", s.cfg.Workers)
	err := s.cfg.serve(serveCtx, ln, s.Echo, drainBy)
	stop()
	err = errors.Join(err, <-adminErr)
	if werr := s.Pipeline.Wait(drainBy()); werr != nil {
		s.log.Warn("shutdown: detached work still running after --drain", "error", werr.Error())
		err = errors.Join(err, werr)
	}
	s.Close()
	if err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}
