package server

import (
	"errors"
	"fmt"

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
}

// pipelineProblems are the pipeline's own checks of its settings, named by their flags; the
// pipeline's rules live in the pipeline alone.
func (c *Config) pipelineProblems() []error {
	pc := c.pipelineConfig()
	err := pc.Validate()
	var joined interface{ Unwrap() []error }
	if err == nil || !errors.As(err, &joined) {
		return nil
	}
	var out []error
	for _, e := range joined.Unwrap() {
		var ce *plugin.ConfigError
		if errors.As(e, &ce) && pipelineFlags[ce.Field] != "" {
			out = append(out, fmt.Errorf("--%s: %s", pipelineFlags[ce.Field], ce.Reason))
		}
	}
	return out
}
