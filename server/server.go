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
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/styleproxy/styleproxy/engine"
	"github.com/styleproxy/styleproxy/filters/style"
	"github.com/styleproxy/styleproxy/pipeline"
	"github.com/styleproxy/styleproxy/styles"
	"github.com/styleproxy/styleproxy/weights"
)

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
	cluster  *clusterParts // nil without --nats
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
	if err := cfg.readSecrets(); err != nil {
		return nil, err
	}
	eng, ck, err := OpenEngine(cfg.Weights, cfg.Backend, cfg.engineOptions()...)
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
	styleFilter, err := newStyleFilter(&cfg, lib, eng, m, log)
	if err != nil {
		return nil, err
	}
	source, err := openSource(cfg)
	if err != nil {
		return nil, err
	}
	var cp *clusterParts
	if cl != nil {
		if cp, err = openCluster(cfg, cl, m.registry); err != nil {
			return nil, err
		}
	}
	cache, err := openCache(cfg, cp)
	if err != nil {
		return nil, err
	}

	e := newEcho(cfg, log, m)
	admin := e
	if cfg.AdminAddr != "" {
		admin = newEcho(cfg, log, m)
	}

	s := &Server{Echo: e, Admin: admin, Library: lib, Engine: eng, Weights: ck, style: styleFilter, cfg: cfg, log: log, metrics: m, cluster: cp}
	pc := cfg.pipelineConfig()
	pc.Source = source
	pc.Filters = filters(styleFilter)
	if pc.Presets, err = loadPresets(cfg.Presets); err != nil {
		return nil, err
	}
	pc.Cache = cache
	if cp != nil {
		pc.Offload = cp.queue
		if cfg.Worker {
			if err := cp.newWorker(cfg, styleFilter, log); err != nil {
				return nil, err
			}
		}
	}
	pc.KeySalt = "weights=" + ck.Hash + ";engine=" + engine.Version
	pc.Logger = log
	pc.Hooks = m.hooks()
	s.Pipeline, err = pipeline.Mount(e, pc)
	if err != nil {
		return nil, err
	}
	s.mountRoutes(source)
	return s, nil
}

// mountRoutes adds every route beside the image pipeline's: the style API, metrics, the gallery
// and the health checks.
func (s *Server) mountRoutes(source pipeline.Source) {
	cfg, e, admin, lib, m, log := s.cfg, s.Echo, s.Admin, s.Library, s.metrics, s.log
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
}

// newStyleFilter makes the style filter, reporting its iterations to the metrics and its
// compilations to the log; cfg.MaxWorkPx becomes the work size it settled on.
func newStyleFilter(cfg *Config, lib *styles.Library, eng *engine.Engine, m *metrics, log *slog.Logger) (*style.Filter, error) {
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
	f, err := style.New(lib, eng, sc)
	if err != nil {
		return nil, fmt.Errorf("--work-step: %w", err)
	}
	return f, nil
}

// openSource opens --source: an HTTP origin or a folder.
func openSource(cfg Config) (pipeline.Source, error) {
	var source pipeline.Source
	var err error
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
	return source, nil
}

// openCache opens the result cache's tiers (memory, disk, and the cluster's with --nats); nil
// when every tier is off.
func openCache(cfg Config, cp *clusterParts) (*pipeline.Cache, error) {
	cacheDir := cfg.CacheDir
	if cacheDir == "" {
		cacheDir = filepath.Join(cfg.DataDir, "cache")
	}
	cc := pipeline.CacheConfig{MemBytes: int64(cfg.CacheMemMB) << 20}
	if cfg.CacheDiskMB > 0 {
		cc.Dir, cc.DiskBytes = cacheDir, int64(cfg.CacheDiskMB)<<20
	}
	if cp != nil {
		cc.Shared = cp.results
	}
	if cc.MemBytes == 0 && cc.Dir == "" && cc.Shared == nil {
		return nil, nil
	}
	cache, err := pipeline.NewCache(cc)
	if err != nil {
		return nil, fmt.Errorf("--cache-dir: %w", err)
	}
	return cache, nil
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
	if s.cluster != nil && s.cluster.worker == nil {
		return // a front end: the workers stylize
	}
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
		if err := s.cluster.conn.Healthy(); err != nil {
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
	workerDone := s.cluster.runWorker(serveCtx)
	s.log.Info("styleproxy serving", "addr", ln.Addr().String(), "backend", s.Engine.Backend(), "convolutions", s.Engine.Convolutions(),
		"source", s.cfg.Source, "data", s.cfg.DataDir, "workers", s.cfg.Workers)
	err := s.cfg.serve(serveCtx, ln, s.Echo, drainBy)
	stop()
	err = errors.Join(err, <-adminErr)
	<-workerDone
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
