// Package storetest is the conformance test of styles.Store: every implementation (the data
// directory, the cluster's JetStream store) runs the same checks of registration, replacement,
// removal and visibility between two stores on one backing store.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/styleproxy/styleproxy/engine"
	"github.com/styleproxy/styleproxy/imaging"
	"github.com/styleproxy/styleproxy/imaging/imagingtest"
	"github.com/styleproxy/styleproxy/styles"
)

// Opener opens a store on the backing store under test; each call is another reader or writer
// of the same styles, as another process would be. The test closes what it opens.
type Opener func(t *testing.T) styles.Store

// VisibleWithin is how soon a write through one store must be seen through another.
const VisibleWithin = time.Second

// Run runs every conformance check; newBacking makes a fresh, empty backing store for one check
// and returns its Opener.
func Run(t *testing.T, newBacking func(t *testing.T) Opener) {
	for _, c := range []struct {
		name string
		fn   func(*testing.T, Opener)
	}{
		{"AddGetList", testAddGetList}, {"Replace", testReplace}, {"Remove", testRemove},
		{"SeenByAnother", testSeenByAnother}, {"ConcurrentWriters", testConcurrentWriters},
	} {
		t.Run(c.name, func(t *testing.T) { c.fn(t, newBacking(t)) })
	}
}

func library(t *testing.T, open Opener) *styles.Library {
	t.Helper()
	l := styles.New(open(t), FakeEngine{})
	t.Cleanup(func() { l.Close() })
	return l
}

func testAddGetList(t *testing.T, open Opener) {
	lib := library(t, open)
	ctx := context.Background()
	img := imagingtest.Pattern(t, 120, 90, 1, imaging.PNG)
	s, err := lib.Add(ctx, "starry", img, styles.AddOptions{StyleSize: 64})
	if err != nil {
		t.Fatal(err)
	}
	if s.Name != "starry" || !styles.VersionPattern.MatchString(s.Version) || s.StyleSize != 64 || s.Preset != styles.DefaultPreset {
		t.Errorf("Add returned %+v", s)
	}
	got, err := lib.Get("starry")
	if err != nil || !same(got, s) {
		t.Errorf("Get = %+v, %v; want what Add returned", got, err)
	}
	if b, err := lib.Image("starry"); err != nil || !bytes.Equal(b, img) {
		t.Errorf("Image: %d bytes, %v; want the %d bytes uploaded", len(b), err, len(img))
	}
	if th, err := lib.Thumbnail("starry"); err != nil || !bytes.HasPrefix(th, []byte{0xff, 0xd8, 0xff}) {
		t.Errorf("Thumbnail: %d bytes, %v; want a JPEG", len(th), err)
	}
	for i, n := range []string{"zeta", "a-1", "0"} {
		if _, err := lib.Add(ctx, n, imagingtest.Pattern(t, 60, 40, 10+i, imaging.JPEG), styles.AddOptions{StyleSize: 32}); err != nil {
			t.Fatal(err)
		}
	}
	list, err := lib.List()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := Names(list), []string{"0", "a-1", "starry", "zeta"}; !slices.Equal(got, want) {
		t.Errorf("List = %v, want %v", got, want)
	}
	for _, fn := range []func(string) error{
		func(n string) error { _, err := lib.Get(n); return err },
		func(n string) error { _, err := lib.Thumbnail(n); return err },
		func(n string) error { _, err := lib.Image(n); return err },
		lib.Remove,
	} {
		if err := fn("nope"); !errors.Is(err, styles.ErrNotFound) {
			t.Errorf("unknown name: %v, want ErrNotFound", err)
		}
	}
}

func testReplace(t *testing.T, open Opener) {
	lib := library(t, open)
	ctx := context.Background()
	img1, img2 := imagingtest.Pattern(t, 80, 60, 1, imaging.PNG), imagingtest.Pattern(t, 80, 60, 2, imaging.PNG)
	v1, err := lib.Add(ctx, "s", img1, styles.AddOptions{StyleSize: 32})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lib.Add(ctx, "s", img2, styles.AddOptions{StyleSize: 32}); !errors.Is(err, styles.ErrExists) {
		t.Fatalf("second Add without Replace = %v, want ErrExists", err)
	}
	if s, _ := lib.Get("s"); !same(s, v1) {
		t.Fatal("a refused Add changed the style")
	}
	v2, err := lib.Add(ctx, "s", img2, styles.AddOptions{StyleSize: 32, Replace: true})
	if err != nil {
		t.Fatal(err)
	}
	if v2.Version == v1.Version {
		t.Fatal("replacing with another image kept the version")
	}
	if s, _ := lib.Get("s"); !same(s, v2) {
		t.Error("Get does not return the new version")
	}
	if b, _ := lib.Image("s"); !bytes.Equal(b, img2) {
		t.Error("Image returns the old upload")
	}
	v3, err := lib.Add(ctx, "s", img2, styles.AddOptions{StyleSize: 32, Replace: true})
	if err != nil || v3.Version != v2.Version || !v3.Created.Equal(v2.Created) {
		t.Errorf("re-registering the current version: %+v, %v; want it unchanged", v3, err)
	}
}

func testRemove(t *testing.T, open Opener) {
	lib := library(t, open)
	ctx := context.Background()
	img := imagingtest.Pattern(t, 80, 60, 1, imaging.PNG)
	for _, n := range []string{"a", "b"} {
		if _, err := lib.Add(ctx, n, img, styles.AddOptions{StyleSize: 32}); err != nil {
			t.Fatal(err)
		}
	}
	if err := lib.Remove("a"); err != nil {
		t.Fatal(err)
	}
	if _, err := lib.Get("a"); !errors.Is(err, styles.ErrNotFound) {
		t.Errorf("Get after Remove = %v, want ErrNotFound", err)
	}
	if _, err := lib.Image("a"); !errors.Is(err, styles.ErrNotFound) {
		t.Errorf("Image after Remove = %v, want ErrNotFound", err)
	}
	if err := lib.Remove("a"); !errors.Is(err, styles.ErrNotFound) {
		t.Errorf("second Remove = %v, want ErrNotFound", err)
	}
	if l, _ := lib.List(); !slices.Equal(Names(l), []string{"b"}) {
		t.Errorf("List = %v, want [b]", Names(l))
	}
	if _, err := lib.Add(ctx, "a", img, styles.AddOptions{StyleSize: 32}); err != nil {
		t.Errorf("Add after Remove = %v", err)
	}
}

// testSeenByAnother: what one store writes, another store on the same backing serves within
// VisibleWithin, without reopening.
func testSeenByAnother(t *testing.T, open Opener) {
	a, b := library(t, open), library(t, open)
	ctx := context.Background()
	v1, err := a.Add(ctx, "s", imagingtest.Pattern(t, 80, 60, 1, imaging.PNG), styles.AddOptions{StyleSize: 32})
	if err != nil {
		t.Fatal(err)
	}
	Eventually(t, "B serves the style A added", func() error { return want(b, "s", v1) })
	img2 := imagingtest.Pattern(t, 80, 60, 2, imaging.PNG)
	v2, err := a.Add(ctx, "s", img2, styles.AddOptions{StyleSize: 32, Replace: true})
	if err != nil {
		t.Fatal(err)
	}
	Eventually(t, "B serves the version A registered", func() error { return want(b, "s", v2) })
	if im, err := b.Image("s"); err != nil || !bytes.Equal(im, img2) {
		t.Errorf("B's Image: %d bytes, %v; want A's upload", len(im), err)
	}
	if _, err := b.Add(ctx, "s", img2, styles.AddOptions{StyleSize: 32}); !errors.Is(err, styles.ErrExists) {
		t.Errorf("B adding A's name = %v, want ErrExists", err)
	}
	if err := a.Remove("s"); err != nil {
		t.Fatal(err)
	}
	Eventually(t, "B forgets the style A removed", func() error {
		if _, err := b.Get("s"); !errors.Is(err, styles.ErrNotFound) {
			return fmt.Errorf("Get = %v, want ErrNotFound", err)
		}
		return nil
	})
}

// testConcurrentWriters: two stores registering at once, some names shared: every name ends
// with one whole version that both stores agree on.
func testConcurrentWriters(t *testing.T, open Opener) {
	libs := []*styles.Library{library(t, open), library(t, open)}
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i, lib := range libs {
		for j := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				name := fmt.Sprintf("n%d", j%3) // n0 is written by both stores twice
				_, err := lib.Add(ctx, name, imagingtest.Pattern(t, 64, 48, 10*i+j, imaging.PNG), styles.AddOptions{StyleSize: 32, Replace: true})
				errs <- err
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	Eventually(t, "both stores agree", func() error {
		for _, n := range []string{"n0", "n1", "n2"} {
			sa, err := libs[0].Get(n)
			if err != nil {
				return err
			}
			if err := want(libs[1], n, sa); err != nil {
				return err
			}
		}
		return nil
	})
}

func want(l *styles.Library, name string, s *styles.Style) error {
	got, err := l.Get(name)
	if err != nil {
		return err
	}
	if !same(got, s) {
		return fmt.Errorf("%s is version %s, want %s", name, got.Version, s.Version)
	}
	return nil
}

func same(a, b *styles.Style) bool {
	if a == nil || b == nil || a.Name != b.Name || a.Version != b.Version || a.StyleSize != b.StyleSize ||
		a.Preset != b.Preset || a.Weights != b.Weights || !a.Created.Equal(b.Created) {
		return false
	}
	for i := range a.Targets {
		if a.Targets[i].C != b.Targets[i].C || !slices.Equal(a.Targets[i].Data, b.Targets[i].Data) {
			return false
		}
	}
	return true
}

// Eventually retries check until it passes or VisibleWithin is over.
func Eventually(t *testing.T, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(VisibleWithin)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s: %v", what, VisibleWithin, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Names are the styles' names, in order.
func Names(ss []*styles.Style) []string {
	var out []string
	for _, s := range ss {
		out = append(out, s.Name)
	}
	return out
}

// FakeEngine is a fast, deterministic TargetComputer whose targets depend on the image's pixels
// and size.
type FakeEngine struct{}

// StyleTargets implements styles.TargetComputer.
func (FakeEngine) StyleTargets(im *engine.Image) (engine.StyleTargets, error) {
	var st engine.StyleTargets
	var sum float64
	for i, v := range im.Data {
		sum += float64(v) * float64(1+i%7)
	}
	for l := range st {
		c := 2 + l
		d := make([]float32, c*c)
		for i := range d {
			d[i] = float32(sum/float64(len(im.Data))) + float32(l*100+i) + float32(im.H)/1000 + float32(im.W)/1e6
		}
		st[l] = engine.Gram{C: c, Data: d}
	}
	return st, nil
}
