package server

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"time"

	"github.com/styleproxy/styleproxy/cluster"
	"github.com/styleproxy/styleproxy/engine"
	"github.com/styleproxy/styleproxy/filters/grayscale"
	"github.com/styleproxy/styleproxy/filters/style"
	"github.com/styleproxy/styleproxy/pipeline"
	"github.com/styleproxy/styleproxy/plugin"
)

// Config is everything `styleproxy serve` can be told: each tagged field is a flag of that
// name (the CLI reads the tags), with DefaultConfig's value as its default.
type Config struct {
	Addr      string `help:"listen address"`
	AdminAddr string `placeholder:"HOST:PORT" help:"listen address of the admin API, /metrics and /api/progress (default: the --addr listener)"`

	ReadTimeout  time.Duration       `help:"time to read a whole request, an upload included"`
	WriteTimeout time.Duration       `help:"time to write an answer; /img answers get --timeout more"`
	IdleTimeout  time.Duration       `help:"how long an idle keep-alive connection stays open"`
	DataDir      string              `name:"data" help:"data folder: the style library, and the disk cache unless --cache-dir"`
	Source       string              `help:"where /img/{path} comes from: a folder, or an http(s) origin URL"`
	Weights      string              `placeholder:"FILE" help:"SqueezeNet 1.1 checkpoint (or a folder holding one); else the user cache"`
	Backend      string              `help:"GoMLX backend: auto, go, xla:cpu, xla:cuda"`
	Convolutions engine.Convolutions `help:"how the network's 3x3 convolutions are computed: im2col (matrix products; fast on the pure-Go backend) or native (the backend's convolution op: smaller programs for XLA to compile)"`

	Workers     int           `help:"stylizations running at once"`
	Queue       int           `help:"stylizations waiting for a worker (0 = none); beyond that requests get 503"`
	Timeout     time.Duration `help:"how long a request waits for its image (504 after it; the work goes on and is cached)"`
	WorkTimeout time.Duration `help:"time limit for a computation once it holds a worker (queue time not counted)"`

	MaxIters     int    `help:"largest iters a URL may ask for"`
	DefaultIters int    `help:"iters when a URL gives none"`
	MaxWorkPx    int    `help:"longest side the optimisation runs at; outputs are resized from it (0 = 256, or 512 on a CUDA GPU)"`
	WorkStep     int    `help:"the shorter side of a work shape is a multiple of this; fewer shapes to compile, larger aspect error"`
	GPUBatch     int    `name:"gpu-batch" help:"stylizations of one work shape and iteration count run together, up to this many (needs --workers at least as large; 1 = off)"`
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
	NATSAckWait   time.Duration `name:"nats-ack-wait" help:"how long a job taken by a worker that stopped answering waits before another worker gets it"`
	Worker        bool          `help:"with --nats, also run jobs from the work queue here (a small cluster needs no separate workers)"`
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
		DataDir: "./data", Source: "./images", Backend: engine.BackendAuto, Convolutions: engine.Im2col,
		Workers: p.Workers, Queue: p.Queue, Timeout: p.Timeout, WorkTimeout: p.WorkTimeout,
		MaxIters: style.DefaultMaxIters, DefaultIters: style.DefaultDefaultIters,
		WorkStep: style.DefaultWorkStep, GPUBatch: 1, MaxOutputPx: p.MaxOutputPx,
		MaxSourceMB: int(p.MaxSourceBytes >> 20), MaxSourceMP: int(p.MaxSourcePixels / 1_000_000), MaxSourceSide: p.MaxSourceSide,
		OriginTTL:  time.Minute,
		CacheMemMB: 256, CacheDiskMB: 2048, CacheControl: p.CacheControl,
		CacheControlUnpinned: p.CacheControlUnpinned,
		MaxUploadMB:          20, MaxUploadMP: 40, NATSReplicas: 1, NATSResultTTL: 24 * time.Hour, NATSAckWait: cluster.DefaultAckWait,
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

// readSecrets replaces the secrets given as files with the files' contents.
func (c *Config) readSecrets() error {
	if c.AdminTokenFile != "" {
		tok, err := readSecret("admin-token-file", c.AdminTokenFile)
		if err != nil {
			return err
		}
		c.AdminToken = tok
	}
	if c.SigningKeyFile != "" {
		key, err := readSecret("signing-key-file", c.SigningKeyFile)
		if err != nil {
			return err
		}
		c.SigningKey = key
	}
	return nil
}

// pipelineConfig is the pipeline's part of the configuration (its Source, Filters, Cache,
// KeySalt and Hooks are New's to add).
func (c *Config) pipelineConfig() pipeline.Config {
	p := pipeline.NewDefaultConfig()
	p.MaxOutputPx = c.MaxOutputPx
	p.MaxSourceBytes = int64(c.MaxSourceMB) << 20
	p.MaxSourcePixels = int64(c.MaxSourceMP) * 1_000_000
	p.MaxSourceSide = c.MaxSourceSide
	p.Workers = c.Workers
	p.Queue = c.Queue
	p.Timeout = c.Timeout
	p.WorkTimeout = c.WorkTimeout
	p.CacheControl = c.CacheControl
	p.CacheControlUnpinned = c.CacheControlUnpinned
	if c.SigningKey != "" {
		p.SigningKey = []byte(c.SigningKey)
	}
	if c.Logger != nil {
		p.Logger = c.Logger
	}
	return p
}

// pipelineFlags names the flag behind each pipeline setting pipelineConfig sets.
var pipelineFlags = map[string]string{
	"MaxOutputPx": "max-output-px", "MaxSourceBytes": "max-source-mb", "MaxSourcePixels": "max-source-mp",
	"MaxSourceSide": "max-source-side", "Workers": "workers", "Queue": "queue", "Timeout": "timeout",
	"WorkTimeout": "work-timeout", "CacheControl": "cache-control", "CacheControlUnpinned": "cache-control-unpinned",
	"Presets": "presets",
}

// styleConfig is the style filter's part of the configuration, with the work size resolved
// for the backend (New adds the callbacks).
func (c *Config) styleConfig(onCUDA bool) style.Config {
	sc := style.NewDefaultConfig()
	sc.MaxIters = c.MaxIters
	sc.DefaultIters = c.DefaultIters
	sc.MaxWorkPx = workPx(c.MaxWorkPx, onCUDA)
	sc.WorkStep = c.WorkStep
	sc.GPUBatch = c.GPUBatch
	return sc
}

// styleFlags names the flag behind each style setting styleConfig sets.
var styleFlags = map[string]string{
	"MaxIters": "max-iters", "DefaultIters": "default-iters", "MaxWorkPx": "max-work-px", "WorkStep": "work-step",
	"GPUBatch": "gpu-batch",
}

// filters are the filters the server mounts, in order.
func filters(styleFilter *style.Filter) []plugin.Filter {
	return []plugin.Filter{styleFilter, grayscale.New(), grayscale.NewBlur()}
}

// loadPresets reads --presets (none when it is unset).
func loadPresets(path string) (pipeline.Presets, error) {
	if path == "" {
		return nil, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("--presets: %w", err)
	}
	defer f.Close()
	ps, err := pipeline.ParsePresets(f)
	if err != nil {
		return nil, fmt.Errorf("--presets: %s: %w", path, err)
	}
	return ps, nil
}

// componentProblems are the pipeline's and the style filter's own checks of their settings,
// named by their flags: each rule lives in its package alone. The presets are checked against
// the parameters the server's filters own (a filter's parameter names need no instance).
func (c *Config) componentProblems() []error {
	pc := c.pipelineConfig()
	pc.Filters = filters(new(style.Filter))
	var errs []error
	if _, err := engine.ParseConvolutions(string(c.Convolutions)); err != nil {
		errs = append(errs, fmt.Errorf("--convolutions: %w", err))
	}
	if ps, err := loadPresets(c.Presets); err != nil {
		errs = append(errs, err)
	} else {
		pc.Presets = ps
	}
	errs = append(errs, flagErrors(pc.Validate(), pipelineFlags)...)
	return append(errs, flagErrors(c.styleConfig(false).Validate(), styleFlags)...)
}

// flagErrors renames a Validate error's *plugin.ConfigErrors after their flags, dropping the
// fields no flag sets.
func flagErrors(err error, flags map[string]string) []error {
	var joined interface{ Unwrap() []error }
	if err == nil || !errors.As(err, &joined) {
		return nil
	}
	var out []error
	for _, e := range joined.Unwrap() {
		var ce *plugin.ConfigError
		if errors.As(e, &ce) && flags[ce.Field] != "" {
			out = append(out, fmt.Errorf("--%s: %s", flags[ce.Field], ce.Reason))
		}
	}
	return out
}

// engineOptions are the engine settings the flags chose (Validate has checked them).
func (c *Config) engineOptions() []engine.Option {
	return []engine.Option{engine.WithConvolutions(c.Convolutions)}
}
