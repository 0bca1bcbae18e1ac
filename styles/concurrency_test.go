package styles

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/styleproxy/styleproxy/engine"
)

// Registering, replacing, removing and reading at once from many goroutines, through two Library
// values on one directory (as two processes would): run under -race.
func TestConcurrentUse(t *testing.T) {
	fe := &fakeEngine{}
	imgs := make([][]byte, 8)
	expected := map[string]engine.StyleTargets{} // version -> targets
	for i := range imgs {
		imgs[i] = helperImage(t, 100+i)
		expected[computeVersion(imgs[i], 32, DefaultPreset, engine.Presets[DefaultPreset])] = expectedTargets(t, fe, imgs[i], 32)
	}
	dir := t.TempDir()
	lib, log := openLib(t, dir, fe)
	other, otherLog := openLib(t, dir, fe)
	f := &concFixture{imgs: imgs, expected: expected, dir: dir, lib: lib, other: other, libs: []*Library{lib, other}}

	t.Run("same name, replacing", f.sameNameReplacing)

	t.Run("same name, not replacing", f.sameNameOnce)

	t.Run("different names", f.differentNames)

	t.Run("readers during writes", f.readersDuringWrites)

	for _, b := range []*logBuffer{log, otherLog} {
		if s := b.String(); s != "" {
			t.Errorf("log: %s", s)
		}
	}
	again, againLog := openLib(t, dir, nil)
	if _, err := again.List(); err != nil {
		t.Fatal(err)
	}
	if s := againLog.String(); s != "" {
		t.Errorf("reopening after the concurrent writes logged: %s", s)
	}
	for _, p := range tree(t, dir) {
		if p != ".tmp/" && len(p) > 5 && p[:5] == ".tmp/" {
			t.Errorf("leftover %s", p)
		}
	}
}

// concFixture is what TestConcurrentUse's parts share: two libraries on one folder and its images
// with the targets each should get.
type concFixture struct {
	imgs       [][]byte
	expected   map[string]engine.StyleTargets // version -> targets
	dir        string
	lib, other *Library
	libs       []*Library
}

// sameNameReplacing: concurrent replaces of one name leave one complete version, seen by both libraries.
func (f *concFixture) sameNameReplacing(t *testing.T) {
	ctx := context.Background()
	var wg sync.WaitGroup
	versions := make([]string, len(f.imgs))
	for i := range f.imgs {
		wg.Go(func() {
			s, err := f.libs[i%2].Add(ctx, "same", f.imgs[i], helperOptions)
			if err != nil {
				t.Error(err)
				return
			}
			versions[i] = s.Version
		})
	}
	wg.Wait()
	for _, l := range f.libs {
		s, err := l.Get("same")
		if err != nil || !slices.Contains(versions, s.Version) || !sameTargets(s.Targets, f.expected[s.Version]) {
			t.Errorf("after concurrent replaces: %v, %v", s, err)
		}
	}
	if s, _ := f.lib.Get("same"); !slices.Equal(versionDirs(t, f.dir, "same"), []string{s.Version}) {
		t.Errorf("version folders %v, want only %s", versionDirs(t, f.dir, "same"), s.Version)
	}
}

// sameNameOnce: of concurrent registrations of one new name, exactly one wins.
func (f *concFixture) sameNameOnce(t *testing.T) {
	ctx := context.Background()
	var wg sync.WaitGroup
	var won atomic.Int32
	var winner atomic.Value
	for i := range f.imgs {
		wg.Go(func() {
			o := helperOptions
			o.Replace = false
			s, err := f.libs[i%2].Add(ctx, "once", f.imgs[i], o)
			switch {
			case err == nil:
				won.Add(1)
				winner.Store(s.Version)
			case !errors.Is(err, ErrExists):
				t.Errorf("Add = %v, want success or ErrExists", err)
			}
		})
	}
	wg.Wait()
	if won.Load() != 1 {
		t.Fatalf("%d registrations of one name succeeded, want exactly 1", won.Load())
	}
	if s, err := f.other.Get("once"); err != nil || s.Version != winner.Load() {
		t.Errorf("Get = %v, %v; want the winner %v", s, err, winner.Load())
	}
}

// differentNames: concurrent registrations of different names all land.
func (f *concFixture) differentNames(t *testing.T) {
	ctx := context.Background()
	var wg sync.WaitGroup
	var want []string
	for i := range 2 * len(f.imgs) {
		name := fmt.Sprintf("n%02d", i)
		want = append(want, name)
		wg.Go(func() {
			if _, err := f.libs[i%2].Add(ctx, name, f.imgs[i%len(f.imgs)], helperOptions); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	for _, l := range f.libs {
		list, err := l.List()
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, s := range list {
			if s.Name[0] == 'n' {
				got = append(got, s.Name)
			}
		}
		if !slices.Equal(got, want) {
			t.Errorf("List = %v, want %v", got, want)
		}
	}
}

// readersDuringWrites: readers never see a torn or foreign style while writers replace and remove one.
func (f *concFixture) readersDuringWrites(t *testing.T) {
	ctx := context.Background()
	var writers, readers sync.WaitGroup
	done := make(chan struct{})
	for w := range 4 {
		writers.Go(func() {
			for k := range 6 {
				l := f.libs[(w+k)%2]
				if (w+k)%3 == 2 {
					if err := l.Remove("churn"); err != nil && !errors.Is(err, ErrNotFound) {
						t.Error(err)
					}
					continue
				}
				if _, err := l.Add(ctx, "churn", f.imgs[(w*3+k)%len(f.imgs)], helperOptions); err != nil {
					t.Error(err)
				}
			}
		})
	}
	var reads atomic.Int64
	for r := range 4 {
		readers.Go(func() {
			l := f.libs[r%2]
			for {
				select {
				case <-done:
					return
				default:
				}
				reads.Add(1)
				if s, err := l.Get("churn"); err == nil {
					if s.Name != "churn" || !sameTargets(s.Targets, f.expected[s.Version]) {
						t.Errorf("Get returned an inconsistent style: %s %s", s.Name, s.Version)
					}
				} else if !errors.Is(err, ErrNotFound) {
					t.Error(err)
				}
				if b, err := l.Image("churn"); err == nil {
					if !slices.ContainsFunc(f.imgs, func(img []byte) bool { return bytes.Equal(img, b) }) {
						t.Error("Image returned bytes that were never uploaded")
					}
				} else if !errors.Is(err, ErrNotFound) {
					t.Error(err)
				}
				if _, err := l.Thumbnail("churn"); err != nil && !errors.Is(err, ErrNotFound) {
					t.Error(err)
				}
				if list, err := l.List(); err != nil || len(list) < 2*len(f.imgs) {
					t.Errorf("List: %d styles, %v", len(list), err)
				}
				if _, err := l.Get("n00"); err != nil {
					t.Errorf("a style nobody touches: %v", err)
				}
			}
		})
	}
	writers.Wait()
	close(done)
	readers.Wait()
	t.Logf("%d read rounds during the writes", reads.Load())
}
