package server

import (
	"net/http"
	"slices"
	"testing"

	"github.com/styleproxy/styleproxy/imaging/imagingtest"
)

// TestTruncatedUploadsRefused: an artwork cut short, in any accepted format, is refused (415)
// and nothing is written; the whole file registers.
func TestTruncatedUploadsRefused(t *testing.T) {
	a := newStylesTestAPI(t, StylesConfig{AdminToken: stylesTestToken})
	for format, data := range imagingtest.Samples(t, 96, 64) {
		before := stylesTree(t, a.dir)
		checkError(t, a.upload(t, [][2]string{{"name", "cut"}}, data[:len(data)/2]), http.StatusUnsupportedMediaType)
		if got := stylesTree(t, a.dir); !slices.Equal(got, before) {
			t.Fatalf("%s: files written for a truncated upload: %v", format, got)
		}
		rec := a.upload(t, [][2]string{{"name", "whole"}, {"replace", "true"}, {"style_size", "0"}}, data)
		if rec.Code != http.StatusCreated {
			t.Errorf("%s: the whole file got %d: %s", format, rec.Code, rec.Body)
		}
	}
}
