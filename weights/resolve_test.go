package weights

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func touch(t *testing.T, p string) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCacheDir(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	for _, tc := range []struct{ xdg, want string }{
		{"/xdg/cache", "/xdg/cache/styleproxy"},
		{"", filepath.Join(home, ".cache", "styleproxy")},
		{"relative/cache", filepath.Join(home, ".cache", "styleproxy")}, // XDG: relative paths are ignored
	} {
		t.Setenv("XDG_CACHE_HOME", tc.xdg)
		got, err := CacheDir()
		if err != nil || got != tc.want {
			t.Errorf("XDG_CACHE_HOME=%q: CacheDir() = %q, %v; want %q", tc.xdg, got, err, tc.want)
		}
	}
	t.Setenv("XDG_CACHE_HOME", "/xdg/cache")
	if got, err := CachePath(); err != nil || got != "/xdg/cache/styleproxy/"+CacheFileName {
		t.Errorf("CachePath() = %q, %v", got, err)
	}
}

func TestResolve(t *testing.T) {
	shared := sharedDir(t) // before t.Setenv changes $STYLEPROXY_WEIGHTS
	root := t.TempDir()
	cache := filepath.Join(root, "xdg")
	t.Setenv("HOME", filepath.Join(root, "home"))
	t.Setenv("XDG_CACHE_HOME", cache)
	cached := filepath.Join(cache, "styleproxy", CacheFileName)
	flagFile := touch(t, filepath.Join(root, "flag.pth"))
	envFile := touch(t, filepath.Join(root, "env.pth"))
	bothDir := filepath.Join(root, "both")
	touch(t, filepath.Join(bothDir, CacheFileName))
	touch(t, filepath.Join(bothDir, FeaturesFileName))
	featDir := filepath.Join(root, "feat")
	touch(t, filepath.Join(featDir, FeaturesFileName))
	emptyDir := filepath.Join(root, "empty")
	os.MkdirAll(emptyDir, 0o755)
	missing := filepath.Join(root, "missing.pth")

	for _, tc := range []struct {
		name        string
		flag, env   string
		cacheExists bool
		want        string   // path, or "" for an ErrNoWeights error
		wantMsg     []string // substrings of the error
	}{
		{name: "flag wins", flag: flagFile, env: envFile, cacheExists: true, want: flagFile},
		{name: "env next", env: envFile, cacheExists: true, want: envFile},
		{name: "cache last", cacheExists: true, want: cached},
		{name: "flag dir prefers official name", flag: bothDir, want: filepath.Join(bothDir, CacheFileName)},
		{name: "env dir with features file", env: featDir, want: filepath.Join(featDir, FeaturesFileName)},
		{name: "shared folder as env", env: shared, want: filepath.Join(shared, FeaturesFileName)},
		{name: "missing flag file", flag: missing, env: envFile, cacheExists: true,
			wantMsg: []string{missing + ", given by --weights"}},
		{name: "missing env file", env: missing, cacheExists: true,
			wantMsg: []string{missing + ", given by $" + EnvVar}},
		{name: "nothing cached", wantMsg: []string{cached + ", the user cache"}},
		{name: "dir without weights", env: emptyDir,
			wantMsg: []string{filepath.Join(emptyDir, CacheFileName) + " and " + filepath.Join(emptyDir, FeaturesFileName) + ", in the directory given by $" + EnvVar}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(EnvVar, tc.env)
			os.RemoveAll(filepath.Join(cache))
			if tc.cacheExists {
				touch(t, cached)
			}
			got, err := Resolve(tc.flag)
			if tc.want != "" {
				if err != nil || got != tc.want {
					t.Fatalf("Resolve(%q) = %q, %v; want %q", tc.flag, got, err, tc.want)
				}
				return
			}
			if !errors.Is(err, ErrNoWeights) {
				t.Fatalf("Resolve(%q) = %q, %v; want ErrNoWeights", tc.flag, got, err)
			}
			for _, w := range append(tc.wantMsg,
				"no SqueezeNet weights found (looked at ",
				"run `styleproxy weights fetch`, or pass --weights FILE / set STYLEPROXY_WEIGHTS") {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestResolvedSharedLoads(t *testing.T) {
	t.Setenv(EnvVar, sharedDir(t))
	p, err := Resolve("")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Load(p); err != nil {
		t.Fatal(err)
	}
}
