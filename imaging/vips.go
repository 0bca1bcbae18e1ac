package imaging

import (
	"fmt"
	"log/slog"
	"sync"

	"github.com/davidbyttow/govips/v2/vips"
)

// Lifecycle of libvips in this process: govips cannot be restarted once shut down, so the states
// only move forward.
const (
	vipsIdle = iota
	vipsRunning
	vipsDown
)

var (
	vipsMu    sync.Mutex
	vipsState = vipsIdle
)

// Startup starts libvips. It is idempotent and safe for concurrent use; every other function calls
// it on first use, so calling it explicitly only moves the start-up cost (and libvips' module
// loading) to a moment of the caller's choosing.
//
// Settings: libvips' default thread count (the number of CPUs, or $VIPS_CONCURRENCY), the
// operation cache switched off (the pipelines here are decode, resize, encode once, and a cache
// keyed on buffer addresses is a hazard with Go-owned memory), and quiet logging: only critical
// libvips messages reach the default slog logger, everything else surfaces as returned errors.
func Startup() {
	vipsMu.Lock()
	defer vipsMu.Unlock()
	startLocked()
}

func startLocked() {
	if vipsState != vipsIdle {
		return
	}
	vips.LoggingSettings(logHandler, vips.LogLevelCritical)
	vips.Startup(&vips.Config{
		ConcurrencyLevel: 0, // libvips default
		MaxCacheFiles:    0,
		MaxCacheMem:      0,
		MaxCacheSize:     0,
	})
	blockLoaders()
	vipsState = vipsRunning
}

// logHandler forwards critical libvips messages to the default slog logger and drops the rest
// (warnings about corrupt input, and govips' own chatter, which duplicates returned errors).
func logHandler(domain string, level vips.LogLevel, message string) {
	if level == vips.LogLevelCritical {
		slog.Error("libvips", "domain", domain, "error", message)
	}
}

// Shutdown stops libvips and frees its resources. Call it once, at exit, after every Image is
// done with. It is idempotent; afterwards every function returns ErrClosed (libvips cannot be
// restarted in the same process).
func Shutdown() {
	vipsMu.Lock()
	defer vipsMu.Unlock()
	if vipsState == vipsRunning {
		vips.Shutdown()
	}
	vipsState = vipsDown
}

// ensureStarted starts libvips if needed and fails once it has been shut down.
func ensureStarted() error {
	vipsMu.Lock()
	defer vipsMu.Unlock()
	startLocked()
	if vipsState != vipsRunning {
		return fmt.Errorf("%w: libvips has been shut down", ErrClosed)
	}
	return nil
}

// VipsVersion returns the version of the libvips library in use (x.y.z).
func VipsVersion() string { return vips.Version }
