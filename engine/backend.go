package engine

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/gomlx/gomlx/backends"
	_ "github.com/gomlx/gomlx/backends/default" // registers XLA (where it builds) and simplego ("go")
)

// BackendAuto tries GoMLX's XLA backend (CUDA, then CPU) and falls back to the pure-Go backend.
const BackendAuto = "auto"

// NewBackend opens the GoMLX backend named by spec: "go" (pure Go, runs everywhere), "xla:cuda",
// "xla:cpu" (XLA's PJRT plugins, which install themselves on a host that can download them), any
// other GoMLX backend configuration string, or "auto" (or ""). With "auto", an XLA backend that
// cannot start is logged and the pure-Go backend used instead.
//
// On CUDA, "auto" asks for full float32 matrix products. Left to itself XLA computes float32
// products in TF32 on recent GPUs, which moves the losses and gradient about 1% off the
// reference's; GoMLX v0.27.2 spells the full-precision request "xla:cuda,tf32" (that option sets
// XLA's precision to HIGHEST on CUDA). Measured on an H100: 1.65 ms an iteration at 192x256 with
// it, 1.56 ms without, and only with it do the golden tests pass.
func NewBackend(spec string) (backends.Backend, error) {
	spec = strings.TrimSpace(spec)
	if spec != "" && spec != BackendAuto {
		b, err := backends.NewWithConfig(spec)
		if err != nil {
			return nil, fmt.Errorf("engine: backend %q: %w", spec, err)
		}
		return b, nil
	}
	var errs []error
	for _, candidate := range []string{"xla:cuda,tf32", "xla:cpu"} {
		b, err := backends.NewWithConfig(candidate)
		if err == nil {
			return b, nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", candidate, err))
	}
	slog.Info("XLA backend unavailable, using the pure-Go backend (set --backend go to skip this check)",
		"reason", firstLine(errors.Join(errs...).Error()))
	b, err := backends.NewWithConfig("go")
	if err != nil {
		return nil, fmt.Errorf("engine: pure-Go backend: %w", err)
	}
	return b, nil
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
