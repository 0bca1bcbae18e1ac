package styles

import (
	"bytes"
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/styleproxy/styleproxy/engine"
	"github.com/styleproxy/styleproxy/imaging"
	"github.com/styleproxy/styleproxy/imaging/imagingtest"
	"github.com/styleproxy/styleproxy/internal/testutil"
)

func TestAddGetList(t *testing.T) {
	dir := t.TempDir()
	fe := &fakeEngine{}
	lib, _ := openLib(t, dir, fe)
	img := imagingtest.Pattern(t, 400, 300, 1, imaging.PNG)
	before := time.Now()
	s, err := lib.Add(context.Background(), "starry", img, AddOptions{StyleSize: 64})
	if err != nil {
		t.Fatal(err)
	}
	if s.Name != "starry" || !VersionPattern.MatchString(s.Version) || s.StyleSize != 64 || s.Preset != DefaultPreset ||
		s.Weights != engine.Presets[DefaultPreset] || s.Created.Before(before.Add(-time.Second)) || s.Created.After(time.Now()) {
		t.Errorf("Add returned %+v", s)
	}
	if !sameTargets(s.Targets, expectedTargets(t, fe, img, 64)) {
		t.Error("stored targets differ from the ones computed for the image at style size 64")
	}
	got, err := lib.Get("starry")
	if err != nil || got != s {
		t.Errorf("Get = %p, %v; want the style Add returned (%p)", got, err, s)
	}

	// The files, where the layout says.
	want := []string{".tmp/", "index.json", "starry/", "starry/" + s.Version + "/", "starry/" + s.Version + "/image.png",
		"starry/" + s.Version + "/meta.json", "starry/" + s.Version + "/targets.bin", "starry/" + s.Version + "/thumb.jpg"}
	if got := tree(t, dir); !slices.Equal(got, want) {
		t.Errorf("files:\n%v\nwant\n%v", got, want)
	}
	testutil.CheckFileModes(t, dir) // index.json was 0600, unreadable to a server run as another user

	// Image is the upload byte for byte; the thumbnail a JPEG fitting in 256×256.
	if b, err := lib.Image("starry"); err != nil || !bytes.Equal(b, img) {
		t.Errorf("Image: %d bytes, %v; want the %d bytes uploaded", len(b), err, len(img))
	}
	th, err := lib.Thumbnail("starry")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(th, []byte{0xff, 0xd8, 0xff}) {
		t.Error("thumbnail is not a JPEG")
	}
	tim, err := imaging.Decode(th, imaging.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if w, h := tim.Size(); w != 256 || h != 192 {
		t.Errorf("thumbnail %dx%d, want 256x192", w, h)
	}
	tim.Close()

	// List is sorted by name.
	for i, n := range []string{"zeta", "a-1", "b_2", "0"} {
		if _, err := lib.Add(context.Background(), n, imagingtest.Pattern(t, 60, 40, 10+i, imaging.JPEG), AddOptions{StyleSize: 32}); err != nil {
			t.Fatal(err)
		}
	}
	list, err := lib.List()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := names(list), []string{"0", "a-1", "b_2", "starry", "zeta"}; !slices.Equal(got, want) {
		t.Errorf("List = %v, want %v", got, want)
	}
	for _, fn := range []func(string) error{
		func(n string) error { _, err := lib.Get(n); return err },
		func(n string) error { _, err := lib.Thumbnail(n); return err },
		func(n string) error { _, err := lib.Image(n); return err },
	} {
		if err := fn("nope"); !errors.Is(err, ErrNotFound) {
			t.Errorf("unknown name: %v, want ErrNotFound", err)
		}
		if err := fn("No Pe"); !errors.Is(err, ErrInvalidName) {
			t.Errorf("invalid name: %v, want ErrInvalidName", err)
		}
	}
}

func TestOptions(t *testing.T) {
	img := imagingtest.Pattern(t, 90, 60, 3, imaging.PNG)
	scream := engine.Presets["the_scream"]
	tests := []struct {
		name   string
		opt    AddOptions
		preset string
		w      engine.Weights
		size   int
	}{
		{"defaults", AddOptions{StyleSize: 48}, DefaultPreset, engine.Presets[DefaultPreset], 48},
		{"preset", AddOptions{StyleSize: 48, Preset: "the_scream"}, "the_scream", scream, 48},
		{"overrides", AddOptions{StyleSize: 48, Preset: "the_scream", Content: ptr(1.5), TV: ptr(0.0), Style: &[4]float64{1, 2, 3, 4}},
			"the_scream", engine.Weights{Content: 1.5, Style: [4]float64{1, 2, 3, 4}, TV: 0}, 48},
		{"one override", AddOptions{StyleSize: 48, TV: ptr(7.0)}, DefaultPreset,
			func() engine.Weights { w := engine.Presets[DefaultPreset]; w.TV = 7; return w }(), 48},
		{"own size", AddOptions{StyleSize: 0}, DefaultPreset, engine.Presets[DefaultPreset], 0},
	}
	fe := &fakeEngine{}
	lib, _ := openLib(t, t.TempDir(), fe)
	versions := map[string]string{}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := lib.Add(context.Background(), "s", img, func() AddOptions { o := tc.opt; o.Replace = true; return o }())
			if err != nil {
				t.Fatal(err)
			}
			if s.Preset != tc.preset || s.Weights != tc.w || s.StyleSize != tc.size {
				t.Errorf("got preset %q weights %+v size %d; want %q %+v %d", s.Preset, s.Weights, s.StyleSize, tc.preset, tc.w, tc.size)
			}
			if !sameTargets(s.Targets, expectedTargets(t, fe, img, tc.size)) {
				t.Error("targets not computed at the style size")
			}
			if prev, dup := versions[s.Version]; dup {
				t.Errorf("version %s also given to %q: settings must change the version", s.Version, prev)
			}
			versions[s.Version] = tc.name
		})
	}
}

func TestRefusals(t *testing.T) {
	png := imagingtest.Pattern(t, 60, 40, 1, imaging.PNG)
	big := imagingtest.Pattern(t, 300, 300, 1, imaging.PNG)
	nan := math.NaN()
	long := strings.Repeat("a", 65)
	tests := []struct {
		name    string
		style   string
		data    []byte
		opt     AddOptions
		readOnl bool
		want    error
	}{
		{"empty name", "", png, AddOptions{}, false, ErrInvalidName},
		{"upper case", "Starry", png, AddOptions{}, false, ErrInvalidName},
		{"leading dash", "-x", png, AddOptions{}, false, ErrInvalidName},
		{"leading underscore", "_x", png, AddOptions{}, false, ErrInvalidName},
		{"space", "a b", png, AddOptions{}, false, ErrInvalidName},
		{"slash", "a/b", png, AddOptions{}, false, ErrInvalidName},
		{"dot dot", "..", png, AddOptions{}, false, ErrInvalidName},
		{"dot", "a.b", png, AddOptions{}, false, ErrInvalidName},
		{"65 characters", long, png, AddOptions{}, false, ErrInvalidName},
		{"non-ASCII", "café", png, AddOptions{}, false, ErrInvalidName},
		{"unknown preset", "ok", png, AddOptions{Preset: "mona_lisa"}, false, ErrInvalidOptions},
		{"negative content weight", "ok", png, AddOptions{Content: ptr(-1.0)}, false, ErrInvalidOptions},
		{"NaN TV weight", "ok", png, AddOptions{TV: &nan}, false, ErrInvalidOptions},
		{"infinite style weight", "ok", png, AddOptions{Style: &[4]float64{1, math.Inf(1), 1, 1}}, false, ErrInvalidOptions},
		{"huge style weight", "ok", png, AddOptions{Style: &[4]float64{1, 1, 1, 2e12}}, false, ErrInvalidOptions},
		{"negative style size", "ok", png, AddOptions{StyleSize: -1}, false, ErrInvalidOptions},
		{"style size below the network's minimum", "ok", png, AddOptions{StyleSize: 10}, false, ErrInvalidOptions},
		{"style size over the maximum", "ok", png, AddOptions{StyleSize: MaxStyleSize + 1}, false, ErrInvalidOptions},
		{"not an image", "ok", []byte("hello, I am not a picture"), AddOptions{}, false, imaging.ErrNotImage},
		{"empty upload", "ok", nil, AddOptions{}, false, imaging.ErrNotImage},
		{"truncated image", "ok", big[:len(big)/2], AddOptions{}, false, imaging.ErrNotImage},
		{"over the byte limit", "ok", big, AddOptions{Limits: imaging.Limits{MaxBytes: int64(len(big) - 1)}}, false, imaging.ErrTooLarge},
		{"over the pixel limit", "ok", big, AddOptions{Limits: imaging.Limits{MaxPixels: 300*300 - 1}}, false, imaging.ErrTooLarge},
		{"decompression bomb", "ok", testutil.BombPNG(50000, 50000, 1), AddOptions{Limits: imaging.Limits{MaxPixels: 40_000_000}}, false, imaging.ErrTooLarge},
		{"own size over the network's limit", "ok", testutil.BombPNG(5000, 5000, 5000), AddOptions{Limits: imaging.Limits{MaxPixels: 40_000_000}}, false, imaging.ErrTooLarge},
		{"svg", "ok", []byte(`<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="64" height="64"></svg>`), AddOptions{}, false, imaging.ErrUnsupportedFormat},
		{"pdf", "ok", []byte("%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n"), AddOptions{}, false, imaging.ErrUnsupportedFormat},
		{"too small as uploaded", "ok", imagingtest.Pattern(t, 20, 40, 1, imaging.PNG), AddOptions{StyleSize: 0}, false, ErrTooSmall},
		{"too small after scaling", "ok", imagingtest.Pattern(t, 400, 20, 1, imaging.PNG), AddOptions{StyleSize: 0}, false, ErrTooSmall},
		{"read-only library", "ok", png, AddOptions{}, true, ErrReadOnly},
	}
	dir := t.TempDir()
	fe := &fakeEngine{}
	lib, _ := openLib(t, dir, fe)
	ro, _ := openLib(t, dir, nil)
	empty := tree(t, dir)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := lib
			if tc.readOnl {
				l = ro
			}
			s, err := l.Add(context.Background(), tc.style, tc.data, tc.opt)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Add = %v, %v; want %v", s, err, tc.want)
			}
			if msg := err.Error(); strings.Count(msg, "\n") > 0 || len(msg) > 300 {
				t.Errorf("error is not one clear line: %q", msg)
			}
			if got := tree(t, dir); !slices.Equal(got, empty) {
				t.Errorf("a refused registration wrote files: %v", got)
			}
		})
	}
	if n := fe.calls.Load(); n != 0 {
		t.Errorf("the engine ran %d times for refused registrations", n)
	}
	if err := lib.Remove("nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Remove(unknown) = %v, want ErrNotFound", err)
	}
	if err := lib.Remove("../x"); !errors.Is(err, ErrInvalidName) {
		t.Errorf("Remove(../x) = %v, want ErrInvalidName", err)
	}
	// The longest valid name and a one-character name are fine.
	for _, n := range []string{strings.Repeat("z", 64), "0", "a-_9"} {
		if _, err := lib.Add(context.Background(), n, png, AddOptions{StyleSize: 32}); err != nil {
			t.Errorf("Add(%q) = %v", n, err)
		}
	}
}

func TestCancelledAddWritesNothing(t *testing.T) {
	dir := t.TempDir()
	lib, _ := openLib(t, dir, &fakeEngine{})
	empty := tree(t, dir)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := lib.Add(ctx, "x", imagingtest.Pattern(t, 60, 40, 1, imaging.PNG), AddOptions{StyleSize: 32}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Add with a cancelled context = %v", err)
	}
	if got := tree(t, dir); !slices.Equal(got, empty) {
		t.Errorf("files written: %v", got)
	}
}

func TestReplace(t *testing.T) {
	dir := t.TempDir()
	fe := &fakeEngine{}
	lib, _ := openLib(t, dir, fe)
	ctx := context.Background()
	img1, img2 := imagingtest.Pattern(t, 80, 60, 1, imaging.PNG), imagingtest.Pattern(t, 80, 60, 2, imaging.PNG)
	v1, err := lib.Add(ctx, "s", img1, AddOptions{StyleSize: 32})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lib.Add(ctx, "s", img2, AddOptions{StyleSize: 32}); !errors.Is(err, ErrExists) {
		t.Fatalf("second Add without Replace = %v, want ErrExists", err)
	}
	if s, _ := lib.Get("s"); s != v1 {
		t.Fatal("a refused Add changed the style")
	}
	v2, err := lib.Add(ctx, "s", img2, AddOptions{StyleSize: 32, Replace: true})
	if err != nil {
		t.Fatal(err)
	}
	if v2.Version == v1.Version {
		t.Fatal("replacing with another image kept the version: cached results of the old one would be served")
	}
	if s, _ := lib.Get("s"); s != v2 || !sameTargets(s.Targets, expectedTargets(t, fe, img2, 32)) {
		t.Error("Get does not return the new version")
	}
	if b, _ := lib.Image("s"); !bytes.Equal(b, img2) {
		t.Error("Image returns the old upload")
	}
	if got := versionDirs(t, dir, "s"); !slices.Equal(got, []string{v2.Version}) {
		t.Errorf("version folders %v, want only the new one %s", got, v2.Version)
	}
	// Every setting that changes the result changes the version.
	for _, o := range []AddOptions{{StyleSize: 48}, {StyleSize: 32, Preset: "composition_vii"}, {StyleSize: 32, Content: ptr(1.0)},
		{StyleSize: 32, Style: &[4]float64{1, 1, 1, 1}}, {StyleSize: 32, TV: ptr(1.0)}} {
		o.Replace = true
		v, err := lib.Add(ctx, "s", img2, o)
		if err != nil {
			t.Fatal(err)
		}
		if v.Version == v2.Version {
			t.Errorf("options %+v kept version %s", o, v.Version)
		}
	}
	// The same image and settings again: the same version, unchanged (and no engine run wasted on
	// anything but computing it).
	v3, err := lib.Add(ctx, "s", img2, AddOptions{StyleSize: 32, Replace: true})
	if err != nil {
		t.Fatal(err)
	}
	if v3.Version != v2.Version {
		t.Errorf("same image and settings gave version %s, then %s", v2.Version, v3.Version)
	}
	v4, err := lib.Add(ctx, "s", img2, AddOptions{StyleSize: 32, Replace: true})
	if err != nil || v4 != v3 || !v4.Created.Equal(v3.Created) {
		t.Errorf("re-registering the current version: %+v, %v; want it unchanged", v4, err)
	}
}

func TestRemove(t *testing.T) {
	dir := t.TempDir()
	lib, _ := openLib(t, dir, &fakeEngine{})
	ctx := context.Background()
	img := imagingtest.Pattern(t, 80, 60, 1, imaging.PNG)
	for _, n := range []string{"a", "b"} {
		if _, err := lib.Add(ctx, n, img, AddOptions{StyleSize: 32}); err != nil {
			t.Fatal(err)
		}
	}
	if err := lib.Remove("a"); err != nil {
		t.Fatal(err)
	}
	if _, err := lib.Get("a"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get after Remove = %v, want ErrNotFound", err)
	}
	if _, err := lib.Thumbnail("a"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Thumbnail after Remove = %v, want ErrNotFound", err)
	}
	if err := lib.Remove("a"); !errors.Is(err, ErrNotFound) {
		t.Errorf("second Remove = %v, want ErrNotFound", err)
	}
	if l, _ := lib.List(); !slices.Equal(names(l), []string{"b"}) {
		t.Errorf("List = %v, want [b]", names(l))
	}
	if _, err := os.Stat(filepath.Join(dir, "styles", "a")); !os.IsNotExist(err) {
		t.Errorf("a's folder is still there: %v", err)
	}
	// The name can be registered again.
	if _, err := lib.Add(ctx, "a", img, AddOptions{StyleSize: 32}); err != nil {
		t.Errorf("Add after Remove = %v", err)
	}
}

func TestReopen(t *testing.T) {
	dir := t.TempDir()
	lib, _ := openLib(t, dir, &fakeEngine{})
	ctx := context.Background()
	var added []*Style
	for i, n := range []string{"one", "two", "three"} {
		s, err := lib.Add(ctx, n, imagingtest.Pattern(t, 70+i, 50, i, imaging.JPEG), AddOptions{StyleSize: 40, Preset: "the_scream", TV: ptr(float64(i))})
		if err != nil {
			t.Fatal(err)
		}
		added = append(added, s)
	}
	if err := lib.Remove("two"); err != nil {
		t.Fatal(err)
	}
	lib.Close()

	// A new Library, read-only this time, as another process would open it.
	again, log := openLib(t, dir, nil)
	list, err := again.List()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(names(list), []string{"one", "three"}) {
		t.Fatalf("after reopening: %v", names(list))
	}
	for _, want := range []*Style{added[0], added[2]} {
		got, err := again.Get(want.Name)
		if err != nil {
			t.Fatal(err)
		}
		if got.Version != want.Version || got.StyleSize != want.StyleSize || got.Preset != want.Preset ||
			got.Weights != want.Weights || !got.Created.Equal(want.Created) || !sameTargets(got.Targets, want.Targets) {
			t.Errorf("reopened %+v\nwant %+v", got, want)
		}
	}
	if s := log.String(); s != "" {
		t.Errorf("reopening a healthy library logged: %s", s)
	}
}

// Get is on the hot path of every request: one os.Stat of the index, then memory.
func BenchmarkGet(b *testing.B) {
	lib, _ := openLib(b, b.TempDir(), &fakeEngine{})
	if _, err := lib.Add(context.Background(), "starry", imagingtest.Pattern(b, 60, 40, 1, imaging.PNG), AddOptions{StyleSize: 32}); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := lib.Get("starry"); err != nil {
				b.Fatal(err)
			}
		}
	})
}
