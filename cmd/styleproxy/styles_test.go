package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/styleproxy/styleproxy/engine"
	"github.com/styleproxy/styleproxy/internal/testutil"
	"github.com/styleproxy/styleproxy/styles"
)

func TestStylesCommands(t *testing.T) {
	t.Setenv("STYLEPROXY_WEIGHTS", testutil.Shared(t, "weights"))
	t.Setenv("STYLEPROXY_BACKEND", testutil.Backend())
	data := t.TempDir()
	starry, scream := testutil.Shared(t, "images", "starry_night.jpg"), testutil.Shared(t, "images", "the_scream.jpg")

	code, out, stderr := runCLI(t, "styles", "add", "starry", starry, "--data", data, "--style-size", "64")
	if code != 0 || !regexp.MustCompile(`^added starry version [0-9a-f]{16} \(preset starry_night, style size 64\)\n$`).MatchString(out) {
		t.Fatalf("styles add: exit %d, stdout %q, stderr %q", code, out, stderr)
	}
	// Flags before the arguments, the data folder from the environment.
	t.Setenv("STYLEPROXY_DATA", data)
	code, _, stderr = runCLI(t, "styles", "add", "--preset", "the_scream", "--tv-weight", "0.5",
		"--style-weights", "1,2,3,4", "--style-size", "48", "scream", scream)
	if code != 0 {
		t.Fatalf("styles add scream: exit %d: %s", code, stderr)
	}

	code, out, _ = runCLI(t, "styles", "list")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 3 || strings.Join(strings.Fields(lines[0]), " ") != "NAME VERSION STYLE_SIZE PRESET CREATED" ||
		!regexp.MustCompile(`^scream +[0-9a-f]{16} +48 +the_scream +\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$`).MatchString(lines[1]) ||
		!strings.HasPrefix(lines[2], "starry ") {
		t.Errorf("styles list: exit %d:\n%s", code, out)
	}

	var list []struct {
		Name      string         `json:"name"`
		Version   string         `json:"version"`
		StyleSize int            `json:"style_size"`
		Preset    string         `json:"preset"`
		Weights   engine.Weights `json:"weights"`
	}
	code, out, _ = runCLI(t, "styles", "list", "--json")
	if err := json.Unmarshal([]byte(out), &list); code != 0 || err != nil || len(list) != 2 {
		t.Fatalf("styles list --json: exit %d, %v:\n%s", code, err, out)
	}
	wantW := engine.Presets["the_scream"]
	wantW.TV, wantW.Style = 0.5, [4]float64{1, 2, 3, 4}
	if list[0].Name != "scream" || list[0].StyleSize != 48 || list[0].Weights != wantW || list[1].Weights != engine.Presets["starry_night"] {
		t.Errorf("styles list --json: %+v", list)
	}

	// The name is taken, unless replacing.
	code, _, stderr = runCLI(t, "styles", "add", "starry", scream, "--style-size", "64")
	if code != 2 || !strings.Contains(stderr, "already exists") || !strings.Contains(stderr, "--replace") {
		t.Errorf("adding a taken name: exit %d, %q", code, stderr)
	}
	code, out, stderr = runCLI(t, "styles", "add", "starry", scream, "--style-size", "64", "--replace")
	if code != 0 || strings.Contains(out, list[1].Version) {
		t.Errorf("--replace: exit %d, %q %q", code, out, stderr)
	}

	code, out, _ = runCLI(t, "styles", "rm", "scream")
	if code != 0 || out != "removed scream\n" {
		t.Errorf("styles rm: exit %d, %q", code, out)
	}
	if code, out, _ = runCLI(t, "styles", "list", "--json"); !strings.Contains(out, `"starry"`) || strings.Contains(out, "scream") {
		t.Errorf("after rm: %s", out)
	}
	code, _, stderr = runCLI(t, "styles", "rm", "scream")
	if code != 2 || !strings.Contains(stderr, "not found") {
		t.Errorf("removing it again: exit %d, %q", code, stderr)
	}

	// What the command line wrote is what the library serves.
	lib, err := styles.Open(data, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer lib.Close()
	if s, err := lib.Get("starry"); err != nil || s.StyleSize != 64 || s.Targets[0].C != 64 {
		t.Errorf("Get(starry) = %+v, %v", s, err)
	}
}

func TestStylesListEmpty(t *testing.T) {
	data := filepath.Join(t.TempDir(), "nothing-here")
	code, out, _ := runCLI(t, "styles", "list", "--data", data)
	if code != 0 || strings.TrimSpace(out) != strings.TrimSpace("NAME  VERSION  STYLE_SIZE  PRESET  CREATED") {
		t.Errorf("list of a missing library: exit %d, %q", code, out)
	}
	if code, out, _ = runCLI(t, "styles", "list", "--json", "--data", data); code != 0 || strings.TrimSpace(out) != "[]" {
		t.Errorf("--json of a missing library: exit %d, %q", code, out)
	}
	if _, err := os.Stat(data); !os.IsNotExist(err) {
		t.Errorf("listing created %s", data)
	}
}

func TestStylesCommandsRefuseBadInput(t *testing.T) {
	// Weights that do not exist: bad input must be refused before they are looked for.
	t.Setenv("STYLEPROXY_WEIGHTS", filepath.Join(t.TempDir(), "no-weights"))
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	t.Setenv("STYLEPROXY_DATA", data)
	notImage, empty, tiny := filepath.Join(dir, "notes.jpg"), filepath.Join(dir, "empty.png"), filepath.Join(dir, "tiny.svg")
	os.WriteFile(notImage, []byte("this is not a picture"), 0o644)
	os.WriteFile(empty, nil, 0o644)
	os.WriteFile(tiny, []byte(`<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64"/>`), 0o644)
	style := testutil.Shared(t, "images", "starry_night.jpg")
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"add: no arguments", []string{"styles", "add"}, `expected "<name> <image>"`},
		{"add: one argument", []string{"styles", "add", "x"}, `expected "<image>"`},
		{"add: three arguments", []string{"styles", "add", "x", style, "y"}, "unexpected argument y"},
		{"add: invalid name", []string{"styles", "add", "Starry Night", style}, "invalid style name"},
		{"add: name with a slash", []string{"styles", "add", "../x", style}, "invalid style name"},
		{"add: missing file", []string{"styles", "add", "x", filepath.Join(dir, "nope.jpg")}, "no such file"},
		{"add: not an image", []string{"styles", "add", "x", notImage}, "not a decodable image"},
		{"add: empty file", []string{"styles", "add", "x", empty}, "empty"},
		{"add: svg", []string{"styles", "add", "x", tiny}, "unsupported"},
		{"add: a folder", []string{"styles", "add", "x", dir}, "not a regular file"},
		{"add: unknown preset", []string{"styles", "add", "x", style, "--preset", "mona_lisa"}, `--preset must be one of "composition_vii","starry_night","the_scream" but got "mona_lisa"`},
		{"add: three style weights", []string{"styles", "add", "x", style, "--style-weights", "1,2,3"}, "needs 4"},
		{"add: negative TV weight", []string{"styles", "add", "x", style, "--tv-weight", "-2"}, "--tv-weight"},
		{"add: style size below the minimum", []string{"styles", "add", "x", style, "--style-size", "5"}, "at least 27"},
		{"add: negative style size", []string{"styles", "add", "x", style, "--style-size", "-1"}, "--style-size"},
		{"add: huge style size", []string{"styles", "add", "x", style, "--style-size", "100000"}, "--style-size"},
		{"add: unknown flag", []string{"styles", "add", "x", style, "--colour", "red"}, "unknown flag --colour"},
		{"rm: no argument", []string{"styles", "rm"}, `expected "<name>"`},
		{"rm: invalid name", []string{"styles", "rm", "A"}, "invalid style name"},
		{"rm: unknown style", []string{"styles", "rm", "nope"}, "not found"},
		{"list: stray argument", []string{"styles", "list", "extra"}, "unexpected argument extra"},
		{"styles alone", []string{"styles"}, `expected one of "add", "list", "rm"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := runCLI(t, tc.args...)
			if code != 2 {
				t.Errorf("exit status %d, want 2 (stderr %q)", code, stderr)
			}
			if strings.Count(strings.TrimSpace(stderr), "\n") != 0 || !strings.Contains(stderr, tc.want) {
				t.Errorf("stderr %q: want one line containing %q", stderr, tc.want)
			}
			if entries, _ := os.ReadDir(filepath.Join(data, "styles")); len(entries) > 3 { // index.json, .lock, .tmp
				t.Errorf("bad input wrote into the library: %v", entries)
			}
		})
	}

	// A good add without weights fails (status 1) saying how to get them, and stores nothing.
	code, _, stderr := runCLI(t, "styles", "add", "x", style)
	if code != 1 || !strings.Contains(stderr, "styleproxy weights fetch") || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
		t.Errorf("add without weights: exit %d, %q", code, stderr)
	}
	if code, out, _ := runCLI(t, "styles", "list", "--json"); code != 0 || strings.TrimSpace(out) != "[]" {
		t.Errorf("after the failed add: %q", out)
	}
}
