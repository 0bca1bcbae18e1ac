package engine

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestAutoCandidates(t *testing.T) {
	tests := []struct {
		plugins []string
		want    []string
	}{
		{nil, nil},
		{[]string{"cpu"}, []string{"xla:cpu"}},
		{[]string{"cpu_v0.98.0"}, []string{"xla:cpu"}},
		{[]string{"cpu", "cuda"}, []string{"xla:cuda,tf32", "xla:cpu"}},
		{[]string{"cuda"}, []string{"xla:cuda,tf32"}},
		{[]string{"cudax", "tpu"}, nil},
	}
	for _, tc := range tests {
		if got := autoCandidates(tc.plugins); !slices.Equal(got, tc.want) {
			t.Errorf("autoCandidates(%q) = %q, want %q", tc.plugins, got, tc.want)
		}
	}
}

func TestIsCUDA(t *testing.T) {
	for d, want := range map[string]bool{
		"xla:cuda - PJRT \"cuda\" plugin [1 device(s)]": true,
		"xla:cpu_v0.98.0 - PJRT \"cpu\" plugin":         false,
		"SimpleGo (go) - portable":                      false,
	} {
		if got := isCUDADescription(d); got != want {
			t.Errorf("isCUDADescription(%q) = %t, want %t", d, got, want)
		}
	}
	for s, want := range map[string]bool{"xla:cuda,tf32": true, "xla:cuda": true, "xla:cpu": false, "go": false} {
		if got := isCUDASpec(s); got != want {
			t.Errorf("isCUDASpec(%q) = %t, want %t", s, got, want)
		}
	}
}

func TestQuickAutotuneKeepsTheOperatorsChoice(t *testing.T) {
	t.Setenv("XLA_FLAGS", "--xla_dump_to=/tmp/x")
	quickAutotune()
	if got := os.Getenv("XLA_FLAGS"); got != "--xla_dump_to=/tmp/x --xla_gpu_autotune_level=0" {
		t.Errorf("XLA_FLAGS = %q, want the autotune level appended", got)
	}
	t.Setenv("XLA_FLAGS", "--xla_gpu_autotune_level=4")
	quickAutotune()
	if got := os.Getenv("XLA_FLAGS"); got != "--xla_gpu_autotune_level=4" {
		t.Errorf("XLA_FLAGS = %q, want the operator's level kept", got)
	}
}

// TestBackendsNeverDownload opens "auto" and "xla:cpu" in a child process whose home folder and
// plugin path are empty and whose proxy leads nowhere, as on a fresh host: "auto" must settle on
// the pure-Go backend, "xla:cpu" must fail, and neither may start GoMLX's installer (which would
// first create its folder under the home folder). A child, because GoMLX reads the plugin path
// and home folder once, when the process starts.
func TestBackendsNeverDownload(t *testing.T) {
	if spec := os.Getenv("STYLEPROXY_TEST_OPEN_BACKEND"); spec != "" {
		b, err := NewBackend(spec)
		if err != nil {
			os.Stdout.WriteString("backend error: " + err.Error() + "\n")
			return
		}
		os.Stdout.WriteString("backend: " + b.Name() + "\n")
		return
	}
	home := t.TempDir()
	empty := filepath.Join(home, "plugins")
	if err := os.Mkdir(empty, 0o755); err != nil {
		t.Fatal(err)
	}
	for spec, want := range map[string]string{"auto": "(go)\n", "xla:cpu": "backend error: "} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestBackendsNeverDownload$")
		cmd.Env = append(os.Environ(), "STYLEPROXY_TEST_OPEN_BACKEND="+spec, "HOME="+home,
			"PJRT_PLUGIN_LIBRARY_PATH="+empty, "HTTPS_PROXY=http://127.0.0.1:9", "HTTP_PROXY=http://127.0.0.1:9",
			"GOMLX_NO_AUTO_INSTALL=")
		cmd.Env = slices.DeleteFunc(cmd.Env, func(kv string) bool { return kv == "GOMLX_NO_AUTO_INSTALL=" })
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", spec, err, out)
		}
		if !strings.Contains(string(out), want) {
			t.Errorf("%s: child said %q, want %q", spec, out, want)
		}
		if _, err := os.Stat(filepath.Join(home, ".local", "lib", "go-xla")); err == nil {
			t.Errorf("%s: GoMLX's installer ran (it created ~/.local/lib/go-xla)", spec)
		}
	}
}
