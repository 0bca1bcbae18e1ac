package styles

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/styleproxy/styleproxy/engine"
	"github.com/styleproxy/styleproxy/imaging"
	"github.com/styleproxy/styleproxy/imaging/imagingtest"
)

// The tests here run a second process: this test binary again, running TestHelperProcess, which
// does what the STYLES_TEST_* variables say on the library in STYLES_TEST_DIR.
const helperEnv = "STYLES_TEST_HELPER"

// helperImage is the image the helper registers for a seed.
func helperImage(t testing.TB, seed int) []byte {
	return imagingtest.Pattern(t, 80, 60, seed, imaging.PNG)
}

// helperOptions are the options the helper registers with.
var helperOptions = AddOptions{StyleSize: 32, Replace: true}

func TestHelperProcess(t *testing.T) {
	op := os.Getenv(helperEnv)
	if op == "" {
		t.Skip("run by the tests that need a second process")
	}
	if at := os.Getenv("STYLES_TEST_CRASH_AT"); at != "" {
		// Die the way a kill does: no deferred cleanup, the file lock released by the kernel.
		testStep = func(s string) {
			if s == at {
				os.Exit(3)
			}
		}
	}
	lib, err := Open(os.Getenv("STYLES_TEST_DIR"), &fakeEngine{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	name := os.Getenv("STYLES_TEST_NAME")
	seed, _ := strconv.Atoi(os.Getenv("STYLES_TEST_SEED"))
	ctx := context.Background()
	switch op {
	case "add":
		_, err = lib.Add(ctx, name, helperImage(t, seed), helperOptions)
	case "add-many":
		for i := range 5 {
			if _, err = lib.Add(ctx, fmt.Sprintf("%s%d", name, i), helperImage(t, seed+i), helperOptions); err != nil {
				break
			}
		}
	case "remove":
		err = lib.Remove(name)
	case "list":
		var list []*Style
		list, err = lib.List()
		fmt.Printf("names: %s\n", strings.Join(names(list), " "))
	default:
		err = fmt.Errorf("unknown helper op %q", op)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// helper runs TestHelperProcess in a new process and returns its exit status and output.
func helper(t *testing.T, dir, op, name string, seed int, extraEnv ...string) (int, string) {
	t.Helper()
	cmd := helperCmd(dir, op, name, seed, extraEnv...)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatal(err)
	}
	return cmd.ProcessState.ExitCode(), string(out)
}

func helperCmd(dir, op, name string, seed int, extraEnv ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), helperEnv+"="+op, "STYLES_TEST_DIR="+dir, "STYLES_TEST_NAME="+name,
		"STYLES_TEST_SEED="+strconv.Itoa(seed))
	cmd.Env = append(cmd.Env, extraEnv...)
	return cmd
}

func mustHelper(t *testing.T, dir, op, name string, seed int) string {
	t.Helper()
	code, out := helper(t, dir, op, name, seed)
	if code != 0 {
		t.Fatalf("helper %s %s: exit %d:\n%s", op, name, code, out)
	}
	return out
}

// A style that another process writes into the data directory is served without a restart, and
// so are its replacement and its removal; writers in two processes and this one at once all land.
func TestSecondProcessWritesAreSeen(t *testing.T) {
	dir := t.TempDir()
	fe := &fakeEngine{}
	lib, log := openLib(t, dir, fe)
	if _, err := lib.Get("other"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get before = %v", err)
	}

	mustHelper(t, dir, "add", "other", 5)
	s, err := lib.Get("other")
	if err != nil {
		t.Fatalf("style added by another process: %v", err)
	}
	if !sameTargets(s.Targets, expectedTargets(t, fe, helperImage(t, 5), 32)) {
		t.Error("wrong targets for the style another process added")
	}
	if th, err := lib.Thumbnail("other"); err != nil || len(th) == 0 {
		t.Errorf("Thumbnail = %d bytes, %v", len(th), err)
	}

	mustHelper(t, dir, "add", "other", 6)
	s2, err := lib.Get("other")
	if err != nil || s2.Version == s.Version || !sameTargets(s2.Targets, expectedTargets(t, fe, helperImage(t, 6), 32)) {
		t.Errorf("after another process replaced it: %v, version %s (was %s)", err, s2.Version, s.Version)
	}

	if _, err := lib.Add(context.Background(), "mine", helperImage(t, 7), helperOptions); err != nil {
		t.Fatal(err)
	}
	if out := mustHelper(t, dir, "list", "", 0); !strings.Contains(out, "names: mine other\n") {
		t.Errorf("the other process lists:\n%s", out)
	}

	mustHelper(t, dir, "remove", "other", 0)
	if _, err := lib.Get("other"); !errors.Is(err, ErrNotFound) {
		t.Errorf("after another process removed it: %v", err)
	}

	// Two processes and this one registering at the same time.
	var wg sync.WaitGroup
	errs := make(chan error, 3)
	for _, prefix := range []string{"p", "q"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd := helperCmd(dir, "add-many", prefix, 20)
			if out, err := cmd.CombinedOutput(); err != nil {
				errs <- fmt.Errorf("helper %s: %v\n%s", prefix, err, out)
			}
		}()
	}
	for i := range 5 {
		if _, err := lib.Add(context.Background(), fmt.Sprintf("r%d", i), helperImage(t, 30+i), helperOptions); err != nil {
			t.Error(err)
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	list, err := lib.List()
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"mine", "p0", "p1", "p2", "p3", "p4", "q0", "q1", "q2", "q3", "q4", "r0", "r1", "r2", "r3", "r4"}
	if !slices.Equal(names(list), want) {
		t.Errorf("after concurrent writers: %v\nwant %v", names(list), want)
	}
	if s := log.String(); s != "" {
		t.Errorf("log: %s", s)
	}
}

// A writer killed between any two steps of a write leaves the old style or the new one, whole,
// and the next Open cleans up after it.
func TestKillBetweenWriteSteps(t *testing.T) {
	steps := []string{"staged", "renamed", "index-staged", "indexed", "collected"}
	visible := map[string]bool{"indexed": true, "collected": true} // steps after which the new version is in
	fe := &fakeEngine{}
	newImg := helperImage(t, 3)
	newVersion := computeVersion(newImg, 32, DefaultPreset, engine.Presets[DefaultPreset])
	newTargets := expectedTargets(t, fe, newImg, 32)
	for _, replace := range []bool{false, true} {
		for _, st := range steps {
			what := "new name"
			if replace {
				what = "replace"
			}
			t.Run(what+"/killed after "+st, killedWrite{step: st, replace: replace, visible: visible[st],
				fe: fe, newVersion: newVersion, newTargets: newTargets}.run)
		}
	}
	for _, st := range []string{"index-staged", "indexed"} {
		t.Run("remove/killed after "+st, func(t *testing.T) {
			dir := t.TempDir()
			lib, _ := openLib(t, dir, fe)
			if _, err := lib.Add(context.Background(), "target", helperImage(t, 2), helperOptions); err != nil {
				t.Fatal(err)
			}
			if code, out := helper(t, dir, "remove", "target", 0, "STYLES_TEST_CRASH_AT="+st); code != 3 {
				t.Fatalf("exit %d\n%s", code, out)
			}
			again, _ := openLib(t, dir, nil)
			_, err := again.Get("target")
			if st == "indexed" && !errors.Is(err, ErrNotFound) || st != "indexed" && err != nil {
				t.Errorf("Get after a remove killed at %s: %v", st, err)
			}
			if got := tree(t, dir); st == "indexed" && !slices.Equal(got, storedFiles()) {
				t.Errorf("files: %v", got)
			}
		})
	}
}

// killedWrite is a case of TestKillBetweenWriteSteps: a writer registering "target", new or
// replacing, killed after step; visible says whether the new version is in by then.
type killedWrite struct {
	step             string
	replace, visible bool
	fe               *fakeEngine
	newVersion       string
	newTargets       engine.StyleTargets
}

func (k killedWrite) run(t *testing.T) {
	dir := t.TempDir()
	lib, _ := openLib(t, dir, k.fe)
	keep, err := lib.Add(context.Background(), "keep", helperImage(t, 1), helperOptions)
	if err != nil {
		t.Fatal(err)
	}
	var old *Style
	if k.replace {
		if old, err = lib.Add(context.Background(), "target", helperImage(t, 2), helperOptions); err != nil {
			t.Fatal(err)
		}
	}
	code, out := helper(t, dir, "add", "target", 3, "STYLES_TEST_CRASH_AT="+k.step)
	if code != 3 {
		t.Fatalf("the writer was not killed at %q: exit %d\n%s", k.step, code, out)
	}

	// The library that was open all along, and a fresh one, agree.
	again, log := openLib(t, dir, nil)
	for _, l := range []*Library{lib, again} {
		got, err := l.Get("target")
		switch {
		case k.visible:
			if err != nil || got.Version != k.newVersion || !sameTargets(got.Targets, k.newTargets) {
				t.Errorf("want the new version %s whole, got %v, %v", k.newVersion, got, err)
			}
		case k.replace:
			if err != nil || got.Version != old.Version || !sameTargets(got.Targets, old.Targets) {
				t.Errorf("want the old version %s whole, got %v, %v", old.Version, got, err)
			}
		default:
			if !errors.Is(err, ErrNotFound) {
				t.Errorf("want no style, got %v, %v", got, err)
			}
		}
		if got, err := l.Get("keep"); err != nil || got.Version != keep.Version {
			t.Errorf("the other style: %v, %v", got, err)
		}
	}
	if s := log.String(); strings.Contains(s, "damaged") {
		t.Errorf("reopening reported damage: %s", s)
	}
	// Open collected the leftovers: one version per style, nothing staged.
	kept := []string{"keep/" + keep.Version}
	switch {
	case k.visible:
		kept = append(kept, "target/"+k.newVersion)
	case k.replace:
		kept = append(kept, "target/"+old.Version)
	}
	want := storedFiles(kept...)
	if got := tree(t, dir); !slices.Equal(got, want) {
		t.Errorf("files after reopening:\n%v\nwant\n%v", got, want)
	}
}

// storedFiles is what a library folder holds, sorted, when it stores exactly the given
// "name/version" entries (uploaded as PNG).
func storedFiles(entries ...string) []string {
	want := []string{".tmp/", "index.json"}
	for _, s := range entries {
		n := strings.SplitN(s, "/", 2)[0]
		if !slices.Contains(want, n+"/") {
			want = append(want, n+"/")
		}
		want = append(want, s+"/", s+"/image.png", s+"/meta.json", s+"/targets.bin", s+"/thumb.jpg")
	}
	slices.Sort(want)
	return want
}

// Damage to a stored style is reported and that style skipped; the others load, and the damaged
// one can be registered again.
func TestDamagedEntriesAreReportedAndSkipped(t *testing.T) {
	rewrite := func(name string, fn func([]byte) []byte) func(t *testing.T, vdir string) {
		return func(t *testing.T, vdir string) {
			p := filepath.Join(vdir, name)
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, fn(b), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	damages := []struct {
		name string
		fn   func(t *testing.T, vdir string)
	}{
		{"targets truncated", rewrite(targetsFile, func(b []byte) []byte { return b[:len(b)/2] })},
		{"targets empty", rewrite(targetsFile, func([]byte) []byte { return nil })},
		{"targets byte flipped", rewrite(targetsFile, func(b []byte) []byte { b[len(b)/2] ^= 0x40; return b })},
		{"targets missing", func(t *testing.T, vdir string) { os.Remove(filepath.Join(vdir, targetsFile)) }},
		{"meta missing", func(t *testing.T, vdir string) { os.Remove(filepath.Join(vdir, metaFile)) }},
		{"meta garbage", rewrite(metaFile, func(b []byte) []byte { return b[:len(b)/3] })},
		{"meta of another style", rewrite(metaFile, func(b []byte) []byte {
			return []byte(strings.Replace(string(b), `"name": "bad"`, `"name": "good"`, 1))
		})},
		{"thumbnail changed", rewrite(thumbFile, func(b []byte) []byte { return append(b, 0) })},
		{"image truncated", rewrite("image.png", func(b []byte) []byte { return b[:10] })},
		{"version folder gone", func(t *testing.T, vdir string) { os.RemoveAll(vdir) }},
	}
	fe := &fakeEngine{}
	for _, d := range damages {
		t.Run(d.name, func(t *testing.T) {
			dir := t.TempDir()
			lib, _ := openLib(t, dir, fe)
			live, liveLog := openLib(t, dir, nil) // a library that loads the damage through a reload
			if _, err := live.List(); err != nil {
				t.Fatal(err)
			}
			if _, err := lib.Add(context.Background(), "good", helperImage(t, 1), helperOptions); err != nil {
				t.Fatal(err)
			}
			bad, err := lib.Add(context.Background(), "bad", helperImage(t, 2), helperOptions)
			if err != nil {
				t.Fatal(err)
			}
			d.fn(t, filepath.Join(dir, "styles", "bad", bad.Version))

			again, log := openLib(t, dir, nil)
			for _, c := range []struct {
				what string
				l    *Library
				log  *logBuffer
			}{{"reopened", again, log}, {"reloaded", live, liveLog}} {
				if _, err := c.l.Get("bad"); !errors.Is(err, ErrNotFound) {
					t.Errorf("%s: damaged style: Get = %v, want ErrNotFound", c.what, err)
				}
				if list, err := c.l.List(); err != nil || !slices.Equal(names(list), []string{"good"}) {
					t.Errorf("%s: List = %v, %v", c.what, names(list), err)
				}
				if s := c.log.String(); !strings.Contains(s, "skipping damaged style") || !strings.Contains(s, "name=bad") {
					t.Errorf("%s: the damage was not reported: %q", c.what, s)
				}
			}
			// Registering it again repairs it (same image and settings: same version, rewritten).
			fixed, err := lib.Add(context.Background(), "bad", helperImage(t, 2), helperOptions)
			if err != nil || fixed.Version != bad.Version {
				t.Fatalf("re-registering: %v, %v", fixed, err)
			}
			for _, l := range []*Library{again, live} {
				if got, err := l.Get("bad"); err != nil || !sameTargets(got.Targets, bad.Targets) {
					t.Errorf("after repair: %v", err)
				}
			}
		})
	}
}

func TestDamagedIndexIsRebuilt(t *testing.T) {
	for _, tc := range []struct {
		name string
		fn   func(p string) error
	}{
		{"garbage", func(p string) error { return os.WriteFile(p, []byte(`{"format": 1, "styles": {"a": `), 0o644) }},
		{"bad entry", func(p string) error { return os.WriteFile(p, []byte(`{"format": 1, "styles": {"../a": "x"}}`), 0o644) }},
		{"missing", os.Remove},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			lib, _ := openLib(t, dir, &fakeEngine{})
			var want []*Style
			for i, n := range []string{"a", "b"} {
				s, err := lib.Add(context.Background(), n, helperImage(t, i), helperOptions)
				if err != nil {
					t.Fatal(err)
				}
				want = append(want, s)
			}
			// b replaced: a stale version folder that a rebuild must not pick.
			if err := os.MkdirAll(filepath.Join(dir, "styles", "b", "0000000000000000"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := tc.fn(filepath.Join(dir, "styles", indexFile)); err != nil {
				t.Fatal(err)
			}
			again, log := openLib(t, dir, nil)
			list, err := again.List()
			if err != nil || len(list) != 2 || list[0].Version != want[0].Version || list[1].Version != want[1].Version {
				t.Fatalf("after rebuilding: %v, %v", list, err)
			}
			if s := log.String(); !strings.Contains(s, "rebuilt") {
				t.Errorf("the rebuild was not reported: %q", s)
			}
			if idx, exists, err := readIndex(filepath.Join(dir, "styles")); err != nil || !exists || len(idx) != 2 {
				t.Errorf("the index was not rewritten: %v %v %v", idx, exists, err)
			}
		})
	}
}
