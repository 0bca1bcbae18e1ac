package main

import (
	"encoding/json"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/styleproxy/styleproxy/engine"
	"github.com/styleproxy/styleproxy/internal/testutil"
)

func TestStylizeRefusesBadInput(t *testing.T) {
	t.Setenv("STYLEPROXY_WEIGHTS", testutil.Shared(t, "weights"))
	dir := t.TempDir()
	notImage := filepath.Join(dir, "notes.jpg")
	empty := filepath.Join(dir, "empty.png")
	os.WriteFile(notImage, []byte("this is not a picture"), 0o644)
	os.WriteFile(empty, nil, 0o644)
	damaged := filepath.Join(dir, "damaged.pth")
	ck, err := os.ReadFile(testutil.Shared(t, "weights", "squeezenet1_1_features.pth"))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(damaged, ck[:len(ck)/3], 0o644) // a download cut short
	content := testutil.Shared(t, "images", "tubingen.jpg")
	style := testutil.Shared(t, "images", "starry_night.jpg")
	out := filepath.Join(dir, "out.png")
	tests := []struct {
		name string
		args []string
		want string // in the error line
	}{
		{"missing content file", []string{"--content", filepath.Join(dir, "nope.jpg"), "--style", style, "-o", out}, "no such file"},
		{"content not an image", []string{"--content", notImage, "--style", style, "-o", out}, "not a decodable image"},
		{"empty style file", []string{"--content", content, "--style", empty, "-o", out}, "empty"},
		{"absurd size", []string{"--content", content, "--style", style, "-o", out, "--size", "100000"}, "--size must be between 0 and 4096"},
		{"negative style size", []string{"--content", content, "--style", style, "-o", out, "--style-size", "-3"}, "--style-size"},
		{"size below the network's minimum", []string{"--content", content, "--style", style, "-o", out, "--size", "8"}, "at least 27"},
		{"unknown preset", []string{"--content", content, "--style", style, "-o", out, "--preset", "mona_lisa"}, `--preset must be one of "composition_vii","starry_night","the_scream" but got "mona_lisa"`},
		{"three style weights", []string{"--content", content, "--style", style, "-o", out, "--style-weights", "1,2,3"}, "needs 4"},
		{"unknown output format", []string{"--content", content, "--style", style, "-o", filepath.Join(dir, "out.xyz")}, "--output"},
		{"missing -o", []string{"--content", content, "--style", style}, "missing flags: --output"},
		{"-o without a value", []string{"--content", content, "--style", style, "-o"}, "--output needs a file name"},
		{"unknown flag", []string{"--content", content, "--style", style, "-o", out, "--colour", "red"}, "unknown flag --colour"},
		{"bad init", []string{"--content", content, "--style", style, "-o", out, "--init", "zeros"}, "--init must be one of"},
		{"negative content weight", []string{"--content", content, "--style", style, "-o", out, "--content-weight", "-1"}, "--content-weight"},
		{"style weight not a number", []string{"--content", content, "--style", style, "-o", out, "--style-weights", "1,x,3,4"}, "--style-weights"},
		{"decay-at not a number", []string{"--content", content, "--style", style, "-o", out, "--decay-at", "soon"}, "--decay-at"},
		{"unknown schedule", []string{"--content", content, "--style", style, "-o", out, "--schedule", "slow"}, `--schedule must be one of "fast","reference" but got "slow"`},
		{"reference flag under fast", []string{"--content", content, "--style", style, "-o", out, "--lr", "1"}, "--lr applies only with --schedule reference"},
		{"clamping under fast", []string{"--content", content, "--style", style, "-o", out, "--clamp-until", "5"}, "--clamp-until applies only with --schedule reference"},
		{"negative iterations", []string{"--content", content, "--style", style, "-o", out, "--iters", "-1"}, "--iters"},
		{"unknown backend", []string{"--content", content, "--style", style, "-o", out, "--backend", "bogus"}, `unknown backend "bogus"`},
		{"backend without its family", []string{"--content", content, "--style", style, "-o", out, "--backend", "cuda"}, `unknown backend "cuda"`},
		{"damaged checkpoint", []string{"--content", content, "--style", style, "-o", out, "--weights", damaged}, "not a PyTorch checkpoint"},
		{"stray argument", []string{"extra", "--content", content, "--style", style, "-o", out}, "unexpected argument extra"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := runCLI(t, append([]string{"stylize"}, tc.args...)...)
			if code != 2 {
				t.Errorf("exit status %d, want 2 (stderr %q)", code, stderr)
			}
			if strings.Count(strings.TrimSpace(stderr), "\n") != 0 || !strings.Contains(stderr, tc.want) {
				t.Errorf("stderr %q: want one line containing %q", stderr, tc.want)
			}
			if _, err := os.Stat(out); err == nil {
				t.Errorf("%s was written despite the error", out)
			}
		})
	}
}

func TestMissingWeightsSayHowToGetThem(t *testing.T) {
	t.Setenv("STYLEPROXY_WEIGHTS", "")
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	out := filepath.Join(t.TempDir(), "out.png")
	code, _, stderr := runCLI(t, "stylize", "--content", testutil.Shared(t, "golden", "content_tubingen_128x96.png"),
		"--style", testutil.Shared(t, "golden", "style_starry_96x80.png"), "--size", "0", "--style-size", "0", "-o", out)
	if code != 1 || !strings.Contains(stderr, "styleproxy weights fetch") || !strings.Contains(stderr, "STYLEPROXY_WEIGHTS") {
		t.Errorf("exit %d, stderr %q: want status 1 and instructions naming `styleproxy weights fetch` and STYLEPROXY_WEIGHTS", code, stderr)
	}
}

// goldenRun is one golden pair: its PNGs, the preset its losses were computed with and the
// reference's loss history.
type goldenRun struct {
	name, content, style, preset string
	history                      []float64
}

// goldens are the shared photo pair and the engine's tie-heavy procedural pairs.
func goldens(t *testing.T) []goldenRun {
	t.Helper()
	own, err := filepath.Glob(filepath.Join(testutil.RepoRoot(t), "engine", "testdata", "golden", "*.json"))
	if err != nil || len(own) == 0 {
		t.Fatalf("no golden files in engine/testdata/golden: %v", err)
	}
	var runs []goldenRun
	for _, path := range append([]string{testutil.Shared(t, "golden", "tubingen_starry.json")}, own...) {
		var g struct {
			Content, Style string
			Params         engine.Weights `json:"params"`
			Adam           struct {
				LossHistory []float64 `json:"loss_history"`
			} `json:"adam_lr3_10_iters_from_content"`
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(raw, &g); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		r := goldenRun{name: filepath.Base(path), content: filepath.Join(filepath.Dir(path), g.Content),
			style: filepath.Join(filepath.Dir(path), g.Style), history: g.Adam.LossHistory}
		for name, w := range engine.Presets {
			if w == g.Params {
				r.preset = name
			}
		}
		if r.preset == "" {
			t.Fatalf("%s: loss weights %+v are no preset's", path, g.Params)
		}
		runs = append(runs, r)
	}
	return runs
}

// TestStylizeReproducesGolden runs the reference's golden setup through the command line on
// every golden pair through the reference schedule: exact sizes, 10 Adam steps at lr 3 without
// decay, clamping every step.
func TestStylizeReproducesGolden(t *testing.T) {
	// Flags after the subcommand in any order, one from the environment.
	t.Setenv("STYLEPROXY_WEIGHTS", testutil.Shared(t, "weights"))
	t.Setenv("STYLEPROXY_BACKEND", testutil.Backend())
	t.Setenv("STYLEPROXY_CLAMP_UNTIL", "10")
	for _, g := range goldens(t) {
		t.Run(g.name, func(t *testing.T) {
			dir := t.TempDir()
			out, rep := filepath.Join(dir, "out.png"), filepath.Join(dir, "report.json")
			code, _, stderr := runCLI(t, "stylize", "--content", g.content, "--style", g.style, "--size", "0", "--style-size", "0",
				"--schedule", "reference", "--iters", "10", "--decay-at", "-1", "--preset", g.preset, "--report", rep, "-o", out)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			checkGoldenReport(t, rep, pngSize(t, g.content), g.history)
			if st, err := os.Stat(out); err != nil || st.Size() == 0 {
				t.Errorf("no output image: %v", err)
			}
			testutil.CheckFileModes(t, out, rep) // they were 0600
		})
	}
}

// pngSize is a PNG's [height, width], as the report gives the content's shape.
func pngSize(t *testing.T, path string) [2]int {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cfg, err := png.DecodeConfig(f)
	if err != nil {
		t.Fatal(err)
	}
	return [2]int{cfg.Height, cfg.Width}
}

func checkGoldenReport(t *testing.T, path string, shape [2]int, history []float64) {
	t.Helper()
	var r report
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Fatal(err)
	}
	if r.ContentShape != shape || r.Backend == "" || !(r.Seconds > 0) || !(r.ItersPerSecond > 0) {
		t.Errorf("report %+v: want content_shape %v, a backend and positive timings", r, shape)
	}
	if len(r.LossHistory) != len(history) {
		t.Fatalf("%d losses, want %d", len(r.LossHistory), len(history))
	}
	for i, want := range history {
		tol := 0.05
		if i < 2 {
			tol = 1e-3
		}
		got := r.LossHistory[i]
		if math.Abs(got.Total-want) > tol*want || math.Abs(got.Content+got.Style+got.TV-got.Total) > 1e-6*got.Total {
			t.Errorf("loss before step %d: %+v, want total %.7g within %g", i, got, want, tol)
		}
	}
}
