package pipeline

import (
	"net/url"
	"testing"

	"github.com/styleproxy/styleproxy/imaging"
)

func TestParseImageOptions(t *testing.T) {
	for _, tc := range []struct {
		query, accept string
		want          ImageOptions
	}{
		{"", "", ImageOptions{Quality: 85}},
		{"w=100", "", ImageOptions{Width: 100, Quality: 85}},
		{"w=100&fit=cover", "", ImageOptions{Width: 100, Quality: 85}}, // fit needs both sides
		{"w=100&h=007&fit=fill", "", ImageOptions{Width: 100, Height: 7, Fit: imaging.FitFill, Quality: 85}},
		{"format=png&q=50", "", ImageOptions{Format: imaging.PNG}},
		{"format=jpg&q=1", "", ImageOptions{Format: imaging.JPEG, Quality: 1}},
		{"format=auto", "image/webp", ImageOptions{Format: imaging.WebP, Auto: true, Quality: 85}},
		{"format=auto", "image/png", ImageOptions{Format: imaging.JPEG, Auto: true, Quality: 85}},
		{"w=2048&h=1", "", ImageOptions{Width: 2048, Height: 1, Quality: 85}},
	} {
		q, _ := url.ParseQuery(tc.query)
		got, err := ParseImageOptions(q, 2048, tc.accept)
		if err != nil || got != tc.want {
			t.Errorf("%q: %+v, %v; want %+v", tc.query, got, err, tc.want)
		}
	}
	for _, tc := range []struct{ query, param string }{
		{"w=0", "w"}, {"w=-1", "w"}, {"w=+1", "w"}, {"w= 1", "w"}, {"w=1.0", "w"}, {"w=2049", "w"},
		{"w=99999999999999999999", "w"}, {"h=", "h"}, {"h=x", "h"}, {"fit=Cover", "fit"},
		{"format=JPEG", "format"}, {"format=", "format"}, {"q=0", "q"}, {"q=101", "q"}, {"q=high", "q"},
		{"w=0x10", "w"}, {"w=1_0", "w"}, {"q=+5", "q"}, {"fit=", "fit"},
	} {
		wantParamError(t, tc.query, tc.param)
	}
}

func TestImageOptionsKey(t *testing.T) {
	o := ImageOptions{Width: 300, Height: 200, Fit: imaging.FitCover, Format: imaging.WebP, Quality: 70}
	if k := o.Key(); k != "w=300,h=200,fit=cover,format=webp,q=70" {
		t.Errorf("Key = %s", k)
	}
	if k := (ImageOptions{Quality: 85}).Key(); k != "w=0,h=0,fit=contain,format=source,q=85" {
		t.Errorf("zero Key = %s", k)
	}
}

func TestNegotiateFormat(t *testing.T) {
	avif := imaging.JPEG
	if imaging.CanEncode(imaging.AVIF) {
		avif = imaging.AVIF
	}
	for accept, want := range map[string]imaging.Format{
		"":                                 imaging.JPEG,
		"*/*":                              imaging.JPEG,
		"image/*":                          imaging.JPEG,
		"image/webp":                       imaging.WebP,
		"IMAGE/WEBP;q=0.5":                 imaging.WebP,
		"image/webp;q=0":                   imaging.JPEG,
		"image/webp; q=0.0, image/png":     imaging.JPEG,
		"image/avif":                       avif,
		"image/avif,image/webp,image/apng": map[bool]imaging.Format{true: imaging.AVIF, false: imaging.WebP}[avif == imaging.AVIF],
	} {
		if got := NegotiateFormat(accept); got != want {
			t.Errorf("NegotiateFormat(%q) = %v, want %v", accept, got, want)
		}
	}
}

func TestCleanPath(t *testing.T) {
	for in, want := range map[string]string{
		"a.jpg": "a.jpg", "a//b.jpg": "a/b.jpg", "./a.jpg": "a.jpg", "a/./b/": "a/b", "a b/c%.jpg": "a b/c%.jpg",
		"...jpg": "...jpg", "a/..b/c": "a/..b/c",
	} {
		if got, err := CleanPath(in); err != nil || got != want {
			t.Errorf("CleanPath(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "/a.jpg", "..", "../a", "a/../b", "a/..", "a\x00b", "a\nb", ".", "./", "a/\x7f"} {
		if got, err := CleanPath(in); err == nil {
			t.Errorf("CleanPath(%q) = %q, want an error", in, got)
		}
	}
}

func TestTargetBox(t *testing.T) {
	for _, tc := range []struct {
		sw, sh int
		o      ImageOptions
		ow, oh int // after imaging.FitSize; 0, 0 for no resize
	}{
		{400, 266, ImageOptions{}, 0, 0},
		{4000, 3000, ImageOptions{}, 2048, 1536},
		{3000, 4000, ImageOptions{}, 1536, 2048},
		{400, 266, ImageOptions{Width: 2048}, 2048, 1362},
		{266, 400, ImageOptions{Width: 2048}, 1362, 2048}, // the height is bounded too
		{266, 400, ImageOptions{Height: 100}, 67, 100},
		{400, 266, ImageOptions{Width: 100, Height: 100, Fit: imaging.FitCover}, 100, 100},
		{400, 266, ImageOptions{Width: 100, Height: 100}, 100, 67},
	} {
		w, h, fit, ok := targetBox(tc.sw, tc.sh, tc.o, 2048)
		ow, oh := 0, 0
		if ok {
			ow, oh = imaging.FitSize(tc.sw, tc.sh, w, h, fit)
		}
		if ow != tc.ow || oh != tc.oh {
			t.Errorf("%dx%d %+v: %dx%d, want %dx%d", tc.sw, tc.sh, tc.o, ow, oh, tc.ow, tc.oh)
		}
	}
}

func TestEtagMatch(t *testing.T) {
	e := `"abc"`
	for h, want := range map[string]bool{
		"": false, `"abc"`: true, `W/"abc"`: true, `"x", "abc"`: true, `"x"`: false, "*": true, `abc`: false,
	} {
		if got := ETagMatch(h, e); got != want {
			t.Errorf("ETagMatch(%q) = %v", h, got)
		}
	}
}
