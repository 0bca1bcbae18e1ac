package imaging_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/davidbyttow/govips/v2/vips"

	"github.com/styleproxy/styleproxy/imaging"
	"github.com/styleproxy/styleproxy/imaging/imagingtest"
)

func TestTruncatedInputsRefused(t *testing.T) {
	for name, data := range imagingtest.Samples(t, 96, 64) {
		for _, keep := range []float64{0.5, 0.9, 0.99} {
			cut := data[:int(float64(len(data))*keep)]
			im, err := imaging.Decode(cut, imaging.Limits{})
			if err == nil {
				im.Close()
				t.Errorf("%s cut to %.0f%%: imaging.Decode succeeded, want imaging.ErrNotImage", name, 100*keep)
				continue
			}
			if !errors.Is(err, imaging.ErrNotImage) {
				t.Errorf("%s cut to %.0f%%: imaging.Decode = %v, want imaging.ErrNotImage", name, 100*keep, err)
			}
		}
		im, err := imaging.Decode(data, imaging.Limits{})
		if err != nil {
			t.Errorf("%s whole: %v", name, err)
			continue
		}
		im.Close()
	}
}

func TestUntrustedLoadersBlockedInLibvips(t *testing.T) {
	svg := []byte(`<svg xmlns="http://www.w3.org/2000/svg" width="8" height="8"><rect width="8" height="8"/></svg>`)
	pdf := []byte("%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n3 0 obj<</Type/Page/MediaBox[0 0 8 8]/Parent 2 0 R>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n")
	// Straight to libvips, past imaging.Decode's sniffing: the loaders themselves must refuse.
	for name, data := range map[string][]byte{"svg": svg, "pdf": pdf} {
		ref, err := vips.LoadImageFromBuffer(data, vips.NewImportParams())
		if err == nil {
			ref.Close()
			t.Errorf("libvips loaded %s: its loader is not blocked", name)
			continue
		}
		if !strings.Contains(err.Error(), "blocked") && !strings.Contains(err.Error(), "not a known") {
			t.Errorf("%s: %v, want a blocked-operation error", name, err)
		}
	}
}

func TestOutputsCarryNoSourceMetadata(t *testing.T) {
	for in, data := range imagingtest.Samples(t, 64, 48) {
		for _, f := range []imaging.Format{imaging.JPEG, imaging.PNG, imaging.WebP, imaging.AVIF} {
			if f == imaging.AVIF && !imaging.CanEncode(imaging.AVIF) {
				continue
			}
			im, err := imaging.Decode(data, imaging.Limits{})
			if err != nil {
				t.Fatal(err)
			}
			defer im.Close()
			out, err := im.Encode(f, 80)
			if err != nil {
				t.Fatal(err)
			}
			for _, leak := range []string{"Secret Artist", "GPSLatitude"} {
				if bytes.Contains(out, []byte(leak)) {
					t.Errorf("%s -> %v: output carries %q", in, f, leak)
				}
			}
		}
	}
}
