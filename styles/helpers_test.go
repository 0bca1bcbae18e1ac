package styles

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/styleproxy/styleproxy/engine"
	"github.com/styleproxy/styleproxy/imaging"
	"github.com/styleproxy/styleproxy/imaging/imagingtest"
)

// fakeEngine is a TargetComputer that is fast and deterministic, and whose targets depend on
// every pixel and on the image's size, so that tests can tell images apart and check that the
// stored targets are the ones computed for the right image.
type fakeEngine struct{ calls atomic.Int64 }

func (f *fakeEngine) StyleTargets(im *engine.Image) (engine.StyleTargets, error) {
	f.calls.Add(1)
	var st engine.StyleTargets
	plane := im.H * im.W
	var mean [3]float64
	for c := range mean {
		for i := 0; i < plane; i++ {
			mean[c] += float64(im.Data[c*plane+i]) * float64(1+i%7)
		}
		mean[c] /= float64(plane)
	}
	for l := range st {
		c := 2 + 3*l
		d := make([]float32, c*c)
		for i := range d {
			d[i] = float32(mean[i%3]) + float32(l*100+i) + float32(im.H)/1000 + float32(im.W)/1e6
		}
		st[l] = engine.Gram{C: c, Data: d}
	}
	return st, nil
}

// expectedTargets computes, outside the library, what registration should store for data at
// style size px.
func expectedTargets(t testing.TB, tc TargetComputer, data []byte, px int) engine.StyleTargets {
	t.Helper()
	im, err := imaging.Decode(data, imaging.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	defer im.Close()
	if err := im.ResizeShorterSide(px); err != nil {
		t.Fatal(err)
	}
	rgb, err := im.RGB()
	if err != nil {
		t.Fatal(err)
	}
	eim, err := engine.FromRGB(rgb.Width, rgb.Height, rgb.Pix)
	if err != nil {
		t.Fatal(err)
	}
	st, err := tc.StyleTargets(eim)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func sameTargets(a, b engine.StyleTargets) bool {
	for i := range a {
		if a[i].C != b[i].C || !slices.Equal(a[i].Data, b[i].Data) {
			return false
		}
	}
	return true
}

// testImage encodes a w×h picture whose pixels depend on seed.
func testImage(t testing.TB, w, h int, seed int, f imaging.Format) []byte {
	return imagingtest.Pattern(t, w, h, seed, f)
}

// logBuffer collects a Library's log lines; safe for concurrent use.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func newLogger(buf *logBuffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// openLib opens a library in dir with a fake engine and a log buffer, closed at cleanup.
func openLib(t testing.TB, dir string, tc TargetComputer) (*Library, *logBuffer) {
	t.Helper()
	var buf logBuffer
	l, err := Open(dir, tc, newLogger(&buf))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l, &buf
}

// tree lists the files and folders under dir/styles (relative, sorted), without the lock file.
func tree(t testing.TB, dir string) []string {
	t.Helper()
	root := filepath.Join(dir, "styles")
	var out []string
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if rel != "." && rel != lockFile {
			if d.IsDir() {
				rel += "/"
			}
			out = append(out, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

// versionDirs lists name's version folders on disk.
func versionDirs(t testing.TB, dir, name string) []string {
	t.Helper()
	var out []string
	for _, p := range tree(t, dir) {
		if strings.HasPrefix(p, name+"/") && strings.Count(p, "/") == 2 && strings.HasSuffix(p, "/") {
			out = append(out, strings.TrimSuffix(strings.TrimPrefix(p, name+"/"), "/"))
		}
	}
	return out
}

func names(ss []*Style) []string {
	var out []string
	for _, s := range ss {
		out = append(out, s.Name)
	}
	return out
}

func ptr[T any](v T) *T { return &v }
