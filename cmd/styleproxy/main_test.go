package main

import (
	"bytes"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
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
		a.StyleWeights != "1,2,3,4" || a.ContentWeight != nil || a.Preset != "starry_night" {
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
	code, stdout, stderr := runCLI(t, "sign", "--unpinned", "https://cdn.example/img/cat.jpg?w=200&style=starry")
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

	// By default style=NAME is pinned to the library's current version.
	t.Setenv("STYLEPROXY_WEIGHTS", testutil.Weights(t))
	t.Setenv("STYLEPROXY_BACKEND", "go")
	data := t.TempDir()
	if code, _, stderr := runCLI(t, "styles", "add", "starry", testutil.Shared(t, "images", "starry_night.jpg"), "--data", data, "--style-size", "48"); code != 0 {
		t.Fatalf("styles add: exit %d: %s", code, stderr)
	}
	code, stdout, stderr = runCLI(t, "sign", "/img/cat.jpg?style=starry&w=200", "--data", data)
	u, err = url.Parse(strings.TrimSpace(stdout))
	if code != 0 || err != nil || !regexp.MustCompile(`^starry@[0-9a-f]{16}$`).MatchString(u.Query().Get("style")) ||
		!pipeline.Verify([]byte("s3cret"), u.Path, u.Query()) {
		t.Errorf("sign pinned: exit %d, %q %s", code, stdout, stderr)
	}
	// A blend is pinned part by part, shares kept.
	code, stdout, stderr = runCLI(t, "sign", "/img/cat.jpg?style=starry:0.7,starry@0123456789abcdef:0.3", "--data", data)
	if code != 2 || !strings.Contains(stderr, "twice") {
		t.Errorf("sign a blend naming a style twice: exit %d, %q %s", code, stdout, stderr)
	}
	code, stdout, _ = runCLI(t, "sign", "/img/cat.jpg?style=starry:0.7", "--data", data)
	if u, err = url.Parse(strings.TrimSpace(stdout)); code != 0 || err != nil || !regexp.MustCompile(`^starry@[0-9a-f]{16}:0.7$`).MatchString(u.Query().Get("style")) {
		t.Errorf("sign a weighted style: exit %d, %q", code, stdout)
	}
	if code, _, stderr := runCLI(t, "sign", "/img/cat.jpg?style=nope", "--data", data); code != 2 || !strings.Contains(stderr, "nope") {
		t.Errorf("sign with an unknown style: exit %d, %s; want 2 naming it", code, stderr)
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

// TestREADMEShowsTheVCL: the Varnish configuration the README shows is the file the
// deployment (and the Varnish end-to-end test) uses.
func TestREADMEShowsTheVCL(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	vcl, err := os.ReadFile(filepath.Join("..", "..", "deploy", "varnish", "styleproxy.vcl"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(readme), "```vcl\n"+string(vcl)+"```\n") {
		t.Error("README's VCL block differs from deploy/varnish/styleproxy.vcl")
	}
}
