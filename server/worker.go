package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/styleproxy/styleproxy/cluster"
	"github.com/styleproxy/styleproxy/engine"
	"github.com/styleproxy/styleproxy/filters/style"
	"github.com/styleproxy/styleproxy/pipeline"
	"github.com/styleproxy/styleproxy/styles"
)

// WorkerConfig is everything `styleproxy worker` can be told: a GPU host pulling jobs from the
// cluster's queue. The style settings must match the replicas' (a job's iters are checked
// against --max-iters here too).
type WorkerConfig struct {
	Addr         string              `help:"listen address of /metrics, /healthz and /readyz"`
	NATS         string              `name:"nats" placeholder:"URL" help:"the NATS JetStream cluster whose work queue to serve (tls:// for TLS)"`
	NATSCreds    string              `name:"nats-creds" placeholder:"FILE" help:"NATS credentials file (user JWT and seed)"`
	NATSReplicas int                 `name:"nats-replicas" help:"copies JetStream keeps of each bucket and stream it creates (3 on a three-node cluster)"`
	NATSAckWait  time.Duration       `name:"nats-ack-wait" help:"how long a job taken by a worker that stopped answering waits before another worker gets it"`
	Weights      string              `placeholder:"FILE" help:"SqueezeNet 1.1 checkpoint (or a folder holding one); else the user cache"`
	Backend      string              `help:"GoMLX backend: auto, go, xla:cpu, xla:cuda"`
	Convolutions engine.Convolutions `help:"how the network's 3x3 convolutions are computed: im2col or native (as serve's)"`
	Workers      int                 `help:"jobs running at once"`
	WorkTimeout  time.Duration       `help:"time limit of one job's computation"`
	MaxIters     int                 `help:"largest iters a job may ask for (as the replicas' --max-iters)"`
	DefaultIters int                 `help:"iters when a URL gives none (as the replicas')"`
	MaxWorkPx    int                 `help:"largest work shape compiled ahead (0 = 256, or 512 on a CUDA GPU; as the replicas')"`
	WorkStep     int                 `help:"work shapes' step (as the replicas')"`
	GPUBatch     int                 `name:"gpu-batch" help:"jobs of one work shape and iteration count run together, up to this many (needs --workers at least as large; 1 = off)"`

	Logger *slog.Logger `kong:"-"`
}

// DefaultWorkerConfig is what `worker` runs with when no flag says otherwise.
func DefaultWorkerConfig() WorkerConfig {
	d := DefaultConfig()
	return WorkerConfig{
		Addr: ":9091", NATSReplicas: 1, NATSAckWait: cluster.DefaultAckWait, Backend: d.Backend, Workers: d.Workers,
		WorkTimeout: d.WorkTimeout, MaxIters: d.MaxIters, DefaultIters: d.DefaultIters, WorkStep: d.WorkStep,
		GPUBatch: d.GPUBatch, Convolutions: d.Convolutions,
	}
}

// serveConfig is the worker's settings as a serve configuration, so that both check and use
// them by the same rules.
func (c *WorkerConfig) serveConfig() Config {
	s := DefaultConfig()
	s.Addr, s.NATS, s.NATSCreds, s.NATSReplicas, s.NATSAckWait, s.Worker = c.Addr, c.NATS, c.NATSCreds, c.NATSReplicas, c.NATSAckWait, true
	s.Weights, s.Backend, s.Workers, s.WorkTimeout = c.Weights, c.Backend, c.Workers, c.WorkTimeout
	s.MaxIters, s.DefaultIters, s.MaxWorkPx, s.WorkStep = c.MaxIters, c.DefaultIters, c.MaxWorkPx, c.WorkStep
	s.GPUBatch, s.Convolutions = c.GPUBatch, c.Convolutions
	return s
}

// Validate checks the configuration, naming the flags.
func (c *WorkerConfig) Validate() error {
	var errs []error
	if c.NATS == "" {
		errs = append(errs, errors.New("--nats: is required: the cluster whose jobs to run"))
	}
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		errs = append(errs, fmt.Errorf("--addr: %q is not host:port (e.g. :9091)", c.Addr))
	}
	s := c.serveConfig()
	errs = append(errs, s.clusterProblems()...)
	errs = append(errs, s.componentProblems()...)
	return errors.Join(errs...)
}

// Worker is a configured `styleproxy worker`.
type Worker struct {
	Echo   *echo.Echo // /metrics, /healthz, /readyz
	cfg    Config
	log    *slog.Logger
	eng    *engine.Engine
	lib    *styles.Library
	style  *style.Filter
	parts  *clusterParts
	worker *cluster.Worker
}

// NewWorker opens the engine and the cluster's style library and joins the workers.
func NewWorker(wc WorkerConfig) (*Worker, error) {
	if err := wc.Validate(); err != nil {
		return nil, err
	}
	cfg := wc.serveConfig()
	log := wc.Logger
	if log == nil {
		log = slog.Default()
	}
	eng, _, err := OpenEngine(cfg.Weights, cfg.Backend, cfg.engineOptions()...)
	if err != nil {
		return nil, err
	}
	cl, store, err := OpenClusterStyles(ClusterConfig{URL: cfg.NATS, Creds: cfg.NATSCreds, Replicas: cfg.NATSReplicas}, "styleproxy worker", log)
	if err != nil {
		return nil, err
	}
	lib := styles.New(store, nil)
	m := newMetrics()
	sc := cfg.styleConfig(eng.OnCUDA())
	sc.OnIterations = m.onIterations
	filter, err := style.New(lib, eng, sc)
	if err != nil {
		return nil, err
	}
	cp, err := openCluster(cfg, cl, m.registry)
	if err != nil {
		return nil, err
	}
	if err := cp.newWorker(cfg, filter, log); err != nil {
		return nil, err
	}
	w := &Worker{Echo: newEcho(cfg, log, m), cfg: cfg, log: log, eng: eng, lib: lib, style: filter, parts: cp}
	w.Echo.GET("/metrics", m.handler())
	w.Echo.GET("/healthz", func(c echo.Context) error { return c.JSON(http.StatusOK, map[string]string{"status": "ok"}) })
	w.Echo.GET("/readyz", w.readyz)
	m.setRoutes(w.Echo.Routes())
	return w, nil
}

// readyz is ready once the work shapes are compiled, while NATS is reachable.
func (w *Worker) readyz(c echo.Context) error {
	if warming := w.style.Warming(); len(warming) > 0 {
		return pipeline.WriteError(c, http.StatusServiceUnavailable, fmt.Sprintf("warming up: %d work shapes left to compile", len(warming)))
	}
	if err := w.parts.conn.Healthy(); err != nil {
		return pipeline.WriteError(c, http.StatusServiceUnavailable, err.Error())
	}
	return c.JSON(http.StatusOK, map[string]any{"status": "ready", "backend": w.eng.Backend()})
}

// Run compiles the work shapes, then works and serves ln until ctx ends; a job in hand then goes
// back to the queue for another worker.
func (w *Worker) Run(ctx context.Context, ln net.Listener) error {
	w.style.StartWarmup()
	done := w.parts.runWorker(ctx)
	w.log.Info("styleproxy worker running", "addr", ln.Addr().String(), "backend", w.eng.Backend(),
		"convolutions", w.eng.Convolutions(), "workers", w.cfg.Workers)
	drain, cancel := context.WithCancel(context.Background())
	defer cancel()
	err := w.cfg.serve(ctx, ln, w.Echo, func() context.Context { return drain })
	<-done
	w.lib.Close()
	w.parts.conn.Close()
	return err
}
