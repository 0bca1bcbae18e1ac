package imaging

import (
	"bytes"
	"errors"
	"math/rand"
	"testing"

	"github.com/davidbyttow/govips/v2/vips"

	"github.com/styleproxy/styleproxy/internal/testutil"
)

func TestSideAndAspectLimits(t *testing.T) {
	strip := testutil.BombPNG(20000, 2, 1)
	for _, tc := range []struct {
		name string
		data []byte
		lim  Limits
	}{
		{"longer side", strip, Limits{MaxSide: 16384}},
		{"aspect", strip, Limits{MaxAspect: 100}},
		{"aspect portrait", testutil.BombPNG(1, 101, 1), Limits{MaxAspect: 100}},
	} {
		if _, err := Probe(tc.data, tc.lim); !errors.Is(err, ErrTooLarge) {
			t.Errorf("%s: Probe = %v, want ErrTooLarge", tc.name, err)
		}
		if _, err := Decode(tc.data, tc.lim); !errors.Is(err, ErrTooLarge) {
			t.Errorf("%s: Decode = %v, want ErrTooLarge", tc.name, err)
		}
	}
	if _, err := Probe(testutil.BombPNG(100, 1, 1), Limits{MaxAspect: 100, MaxSide: 100}); err != nil {
		t.Errorf("100x1 at the limits: %v", err)
	}
}

func TestAVIFEffortIsBounded(t *testing.T) {
	if !CanEncode(AVIF) {
		t.Skip("this libvips cannot encode AVIF")
	}
	rng := rand.New(rand.NewSource(1))
	pix := make([]uint8, 3*64*64)
	rng.Read(pix)
	im, err := FromRGB(&RGB{Width: 64, Height: 64, Pix: pix})
	if err != nil {
		t.Fatal(err)
	}
	defer im.Close()
	got, err := im.Encode(AVIF, 100)
	if err != nil {
		t.Fatal(err)
	}
	// The encoder is deterministic: Encode's bytes are those of an encode at AVIFEffort, and
	// differ from libvips's default effort.
	at := func(effort int) []byte {
		p := vips.NewAvifExportParams()
		p.Quality, p.StripMetadata, p.Effort = 100, true, effort
		b, _, err := im.ref.ExportAvif(p)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	if AVIFEffort > 2 {
		t.Fatalf("AVIFEffort = %d, want at most 2", AVIFEffort)
	}
	if !bytes.Equal(got, at(AVIFEffort)) || bytes.Equal(got, at(4)) {
		t.Error("Encode(AVIF) does not run at AVIFEffort")
	}
}
