package server

import (
	"errors"
	"fmt"
	"os"

	"github.com/styleproxy/styleproxy/filters/grayscale"
	"github.com/styleproxy/styleproxy/filters/style"
	"github.com/styleproxy/styleproxy/pipeline"
	"github.com/styleproxy/styleproxy/plugin"
)

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
	return sc
}

// styleFlags names the flag behind each style setting styleConfig sets.
var styleFlags = map[string]string{
	"MaxIters": "max-iters", "DefaultIters": "default-iters", "MaxWorkPx": "max-work-px", "WorkStep": "work-step",
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
