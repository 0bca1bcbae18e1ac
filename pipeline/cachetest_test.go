package pipeline_test

import (
	"testing"

	"github.com/styleproxy/styleproxy/pipeline"
	"github.com/styleproxy/styleproxy/pipeline/cachetest"
)

// The local tiers pass the conformance test the cluster's shared tier passes too.
func TestCacheTierConformance(t *testing.T) {
	cachetest.Run(t, pipeline.TierMemory, false, func(t *testing.T) *pipeline.Cache {
		c, err := pipeline.NewCache(pipeline.CacheConfig{MemBytes: 8 << 20})
		if err != nil {
			t.Fatal(err)
		}
		return c
	})
	cachetest.Run(t, pipeline.TierDisk, false, func(t *testing.T) *pipeline.Cache {
		c, err := pipeline.NewCache(pipeline.CacheConfig{Dir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		return c
	})
}
