package engine

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"

	"github.com/gomlx/gomlx/backends"
	_ "github.com/gomlx/gomlx/backends/default" // registers XLA (where it builds) and simplego ("go")
	"k8s.io/klog/v2"
)

// ErrUnknownBackend is returned for a backend spec naming no backend compiled into the binary;
// it is the caller's mistake, not a failure of the machine.
var ErrUnknownBackend = errors.New("unknown backend")

// BackendAuto uses GoMLX's XLA backend where a PJRT plugin is installed (CUDA, then CPU) and the
// pure-Go backend otherwise.
const BackendAuto = "auto"

// NewBackend opens the GoMLX backend named by spec: "go" (pure Go, runs everywhere), "xla:cuda",
// "xla:cpu" (XLA through an installed PJRT plugin), any other GoMLX backend configuration string,
// or "auto" (or "").
//
// Nothing here downloads: GoMLX's XLA backend would fetch missing PJRT plugins from the network
// the first time it starts, so auto-install is switched off (see backend_xla.go) and "auto" only
// tries the plugins it finds installed (see InstalledPlugins). An XLA backend that is installed
// but cannot start is logged and the pure-Go backend used instead.
//
// On CUDA, "auto" asks for full float32 matrix products. Left to itself XLA computes float32
// products in TF32 on recent GPUs, which moves the losses and gradient about 1% off the
// reference's; GoMLX v0.27.2 spells the full-precision request "xla:cuda,tf32" (that option sets
// XLA's precision to HIGHEST on CUDA). Only with it do the golden tests pass.
func NewBackend(spec string) (backends.Backend, error) {
	spec = strings.TrimSpace(spec)
	if spec == "go" {
		spec = pureGoConfig
	}
	if strings.HasPrefix(spec, "go") {
		quietGoMLXLogs()
	}
	if spec != "" && spec != BackendAuto {
		if err := CheckBackendSpec(spec); err != nil {
			return nil, err
		}
		if isCUDASpec(spec) {
			quickAutotune()
		}
		b, err := backends.NewWithConfig(spec)
		if err != nil {
			return nil, fmt.Errorf("engine: backend %q: %w", spec, err)
		}
		return b, nil
	}
	plugins := InstalledPlugins()
	var errs []error
	for _, candidate := range autoCandidates(plugins) {
		if isCUDASpec(candidate) {
			quickAutotune()
		}
		b, err := backends.NewWithConfig(candidate)
		if err == nil {
			return b, nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", candidate, err))
	}
	reason := "no PJRT plugin installed (see PJRT_PLUGIN_LIBRARY_PATH)"
	if len(errs) > 0 {
		reason = firstLine(errors.Join(errs...).Error())
	}
	slog.Info("XLA backend unavailable, using the pure-Go backend (set --backend go to skip this check)",
		"reason", reason)
	quietGoMLXLogs()
	b, err := backends.NewWithConfig(pureGoConfig)
	if err != nil {
		return nil, fmt.Errorf("engine: pure-Go backend: %w", err)
	}
	return b, nil
}

// pureGoConfig is the pure-Go backend as the engine runs it: with packgemm, simplego's packed
// matrix product, which its AVX-512 kernel (builds with GOEXPERIMENT=simd, on CPUs that have
// AVX-512) makes several times faster than its default blocked kernel; elsewhere packgemm's
// portable kernel is about as fast as the default (see README, Speed).
const pureGoConfig = "go:packgemm"

// quietGoMLXLogs keeps GoMLX's informational klog lines (such as packgemm's "still experimental"
// notice) off stderr, where a command's only line should be its error; klog's errors still go there.
var quietGoMLXLogs = sync.OnceFunc(func() {
	klog.LogToStderr(false)
	klog.SetOutput(io.Discard)
})

// autoCandidates are the XLA configurations "auto" tries, in order, given the names of the
// installed PJRT plugins ("cuda", "cpu", or versioned as "cpu_v0.98.0"): CUDA at full float32
// precision first, then CPU. No plugin, no candidate: "auto" never asks GoMLX for a plugin it
// would have to download.
func autoCandidates(plugins []string) []string {
	var out []string
	for _, want := range []struct{ plugin, spec string }{{"cuda", "xla:cuda,tf32"}, {"cpu", "xla:cpu"}} {
		for _, p := range plugins {
			if p == want.plugin || strings.HasPrefix(p, want.plugin+"_v") {
				out = append(out, want.spec)
				break
			}
		}
	}
	return out
}

func isCUDASpec(spec string) bool {
	return strings.HasPrefix(spec, "xla:cuda") || strings.HasPrefix(spec, "cuda")
}

// OnCUDA reports whether the engine computes on XLA's CUDA plugin (a GPU).
func (e *Engine) OnCUDA() bool { return isCUDADescription(e.backend.Description()) }

// BackendName names a backend for logs and reports: XLA's with its plugin ("xla:cuda",
// "xla:cpu_v0.98.0"), since the plugin is what an operator needs to see; others by their name.
func BackendName(b backends.Backend) string {
	if d := b.Description(); strings.HasPrefix(d, "xla:") {
		name, _, _ := strings.Cut(d, " ")
		return name
	}
	return b.Name()
}

// isCUDADescription reads a GoMLX backend description: XLA's reads "xla:PLUGIN - ...".
func isCUDADescription(d string) bool { return strings.HasPrefix(d, "xla:cuda") }

// quickAutotune sets XLA_FLAGS=--xla_gpu_autotune_level=0 unless the operator chose an autotune
// level: XLA's GPU autotuner times candidate kernels for every convolution and matrix product it
// compiles, which multiplies the compile time of each work shape and, for this network, picks
// kernels no faster than the defaults (see README, GPU hosts).
func quickAutotune() {
	flags := os.Getenv("XLA_FLAGS")
	if strings.Contains(flags, "xla_gpu_autotune_level") {
		return
	}
	_ = os.Setenv("XLA_FLAGS", strings.TrimSpace(flags+" --xla_gpu_autotune_level=0"))
}

// CheckBackendSpec refuses a spec naming no compiled-in backend (on which GoMLX would panic), so
// that callers can report the typo before any slower work.
func CheckBackendSpec(spec string) error {
	spec = strings.TrimSpace(spec)
	if spec == "" || spec == BackendAuto {
		return nil
	}
	if name, _, _ := strings.Cut(spec, ":"); !slices.Contains(backends.List(), name) {
		return fmt.Errorf("engine: %w %q (want auto, go, xla:cpu or xla:cuda)", ErrUnknownBackend, spec)
	}
	return nil
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
