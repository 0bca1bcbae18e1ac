package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"image/png"
	"io"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/alecthomas/kong"

	"github.com/styleproxy/styleproxy/engine"
	"github.com/styleproxy/styleproxy/internal/testutil"
	"github.com/styleproxy/styleproxy/pipeline"
)

func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(args, &out, &errb)
	return code, out.String(), errb.String()
}

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
		{"unknown flag", []string{"--content", content, "--style", style, "-o", out, "--colour", "red"}, "unknown flag --colour"},
		{"bad init", []string{"--content", content, "--style", style, "-o", out, "--init", "zeros"}, "--init must be one of"},
		{"negative content weight", []string{"--content", content, "--style", style, "-o", out, "--content-weight", "-1"}, "--content-weight"},
		{"style weight not a number", []string{"--content", content, "--style", style, "-o", out, "--style-weights", "1,x,3,4"}, "--style-weights"},
		{"decay-at not a number", []string{"--content", content, "--style", style, "-o", out, "--decay-at", "soon"}, "--decay-at"},
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
// every golden pair: exact sizes, 10 Adam steps at lr 3 without decay, clamping every step.
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
				"--iters", "10", "--decay-at", "-1", "--preset", g.preset, "--report", rep, "-o", out)
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

// commandFlags is every command ("styles add") with its flags, from the command tree itself.
func commandFlags(t *testing.T) map[string][]*kong.Flag {
	t.Helper()
	p, err := newParser(newCLI(), io.Discard, io.Discard, func(int) {})
	if err != nil {
		t.Fatal(err)
	}
	cmds := map[string][]*kong.Flag{}
	for _, n := range p.Model.Leaves(false) {
		name := strings.TrimPrefix(n.FullPath(), "styleproxy ")
		for _, group := range n.AllFlags(false) {
			for _, f := range group {
				if f.Name != "help" {
					cmds[name] = append(cmds[name], f)
				}
			}
		}
	}
	if len(cmds) < 8 {
		t.Fatalf("only %d commands: %v", len(cmds), cmds)
	}
	return cmds
}

// noEnvironment are the flags without a STYLEPROXY_ fallback: a run's own inputs and outputs and
// one-off switches, which a variable left in the environment must not fill in.
var noEnvironment = map[string]bool{"version": true, "content": true, "style": true, "output": true,
	"report": true, "replace": true, "json": true, "url": true, "dest": true}

func TestEveryFlagHasHelpAndTheRightEnvironmentVariable(t *testing.T) {
	for name, flags := range commandFlags(t) {
		code, stdout, stderr := runCLI(t, append(strings.Fields(name), "--help")...)
		if code != 0 || stderr != "" {
			t.Errorf("%s --help: exit %d, stderr %q", name, code, stderr)
		}
		for _, f := range flags {
			want := []string{"STYLEPROXY_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))}
			if noEnvironment[f.Name] {
				want = nil
			}
			if !slices.Equal(f.Envs, want) {
				t.Errorf("%s --%s: environment %v, want %v", name, f.Name, f.Envs, want)
			}
			if !strings.Contains(stdout, "--"+f.Name) {
				t.Errorf("%s --help lacks --%s", name, f.Name)
			}
			for _, e := range f.Envs {
				if !strings.Contains(stdout, "$"+e) {
					t.Errorf("%s --help lacks --%s's %s", name, f.Name, e)
				}
			}
		}
	}
	for _, group := range [][]string{{"--help"}, {"styles", "--help"}, {"weights", "--help"}, {"help", "styles", "add"}} {
		if code, stdout, _ := runCLI(t, group...); code != 0 || !strings.Contains(stdout, "Usage: styleproxy") {
			t.Errorf("%v: exit %d, %q", group, code, stdout)
		}
	}
	if code, stdout, _ := runCLI(t); code != 2 || !strings.Contains(stdout, "styles add") {
		t.Errorf("no command: exit %d, %q; want the usage and status 2", code, stdout)
	}
}

func TestVersionFlag(t *testing.T) {
	code, stdout, stderr := runCLI(t, "--version")
	if code != 0 || stdout != "styleproxy "+version+" (engine "+engine.Version+")\n" || stderr != "" {
		t.Errorf("--version: exit %d, %q, %q", code, stdout, stderr)
	}
}

func TestFlagsMayFollowPositionalArguments(t *testing.T) {
	t.Setenv("STYLEPROXY_DATA", "from-env")
	t.Setenv("STYLEPROXY_STYLE_SIZE", "77")
	root := newCLI()
	p, err := newParser(root, io.Discard, io.Discard, func(int) {})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Parse([]string{"styles", "add", "x", "--tv-weight", "-0.5", "img.png", "--data", "d", "--style-weights", "1,2,3,4"}); err != nil {
		t.Fatal(err)
	}
	a := root.Styles.Add
	if a.Name != "x" || a.Image != "img.png" || a.Data != "d" || *a.TVWeight != -0.5 || a.StyleSize != 77 ||
		!slices.Equal(a.StyleWeights, []float64{1, 2, 3, 4}) || a.ContentWeight != nil || a.Preset != "starry_night" {
		t.Errorf("parsed %+v", a)
	}
	if _, err := p.Parse([]string{"styles", "rm", "--", "--odd"}); err != nil || root.Styles.Rm.Name != "--odd" || root.Styles.Rm.Data != "from-env" {
		t.Errorf("after --: %v, %+v", err, root.Styles.Rm)
	}

	t.Setenv("STYLEPROXY_STYLE_SIZE", "many")
	code, _, stderr := runCLI(t, "styles", "add", "x", "img.png")
	if code != 2 || !strings.Contains(stderr, "STYLEPROXY_STYLE_SIZE") || strings.Count(stderr, "\n") != 1 {
		t.Errorf("bad environment value: exit %d, %q; want status 2 naming STYLEPROXY_STYLE_SIZE", code, stderr)
	}
}

func TestSignPrintsAURLTheServerAccepts(t *testing.T) {
	t.Setenv("STYLEPROXY_SIGNING_KEY", "s3cret")
	code, stdout, stderr := runCLI(t, "sign", "https://cdn.example/img/cat.jpg?w=200&style=starry")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	u, err := url.Parse(strings.TrimSpace(stdout))
	if err != nil {
		t.Fatal(err)
	}
	if !pipeline.Verify([]byte("s3cret"), u.Path, u.Query()) || pipeline.Verify([]byte("other"), u.Path, u.Query()) {
		t.Errorf("%s: does not verify with the key (or verifies with another)", stdout)
	}
	if code, _, _ := runCLI(t, "sign", "not a url"); code != 2 {
		t.Errorf("signing garbage: exit %d, want 2", code)
	}
}

// TestREADMEDocumentsEveryFlag keeps the README's reference in step with the code: every
// command and every flag appears there.
func TestREADMEDocumentsEveryFlag(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(testutil.RepoRoot(t), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	readme := string(raw)
	for name, flags := range commandFlags(t) {
		if !strings.Contains(readme, "styleproxy "+name) && !strings.Contains(readme, "`styleproxy "+strings.Fields(name)[0]) {
			t.Errorf("README does not mention the command %q", name)
		}
		for _, f := range flags {
			if !strings.Contains(readme, "`--"+f.Name+"`") {
				t.Errorf("README does not document %s's flag `--%s`", name, f.Name)
			}
			if f.Short != 0 && !strings.Contains(readme, fmt.Sprintf("`-%c`", f.Short)) {
				t.Errorf("README does not document %s's flag `-%c`", name, f.Short)
			}
		}
	}
}

// TestEveryCommandRefusesAnUnknownBackend: each command that opens the engine answers an unknown
// --backend with one line and status 2, not GoMLX's panic.
func TestEveryCommandRefusesAnUnknownBackend(t *testing.T) {
	t.Setenv("STYLEPROXY_WEIGHTS", testutil.Shared(t, "weights"))
	data, src := t.TempDir(), t.TempDir()
	for _, args := range [][]string{
		{"version", "--backend", "cuda"},
		{"styles", "add", "starry", testutil.Shared(t, "golden", "style_starry_96x80.png"), "--style-size", "0", "--data", data, "--backend", "bogus"},
		{"serve", "--data", data, "--source", src, "--addr", "127.0.0.1:0", "--backend", "bogus"},
	} {
		code, _, stderr := runCLI(t, args...)
		if code != 2 || strings.Count(strings.TrimSpace(stderr), "\n") != 0 || !strings.Contains(stderr, "unknown backend") {
			t.Errorf("%v: exit %d, stderr %q; want 2 and one line saying the backend is unknown", args, code, stderr)
		}
	}
}
