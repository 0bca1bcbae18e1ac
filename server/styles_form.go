package server

import (
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"slices"
	"strconv"
	"strings"

	"github.com/styleproxy/styleproxy/imaging"
	"github.com/styleproxy/styleproxy/styles"
)

// styleForm is a registration's multipart form.
type styleForm struct {
	fields map[string]string
	image  []byte
	seen   bool // an image part was present
}

var styleFormFields = []string{"name", "image", "preset", "style_size", "content_weight", "style_weights", "tv_weight", "replace"}

// errFormTooLarge is a form part over its limit.
var errFormTooLarge = errors.New("too large")

// readStyleForm reads the multipart form into memory, part by part (nothing goes to disk), with
// every part bounded.
func readStyleForm(r *multipart.Reader, maxImage int64) (*styleForm, error) {
	f := &styleForm{fields: map[string]string{}}
	for {
		p, err := r.NextPart()
		if err == io.EOF {
			return f, nil
		}
		if err != nil {
			return nil, err
		}
		name := p.FormName()
		switch {
		case name == "image":
			if f.seen {
				return nil, fmt.Errorf("field %q given twice", name)
			}
			f.seen = true
			if f.image, err = io.ReadAll(io.LimitReader(p, maxImage+1)); err != nil {
				return nil, err
			}
			if int64(len(f.image)) > maxImage {
				return nil, fmt.Errorf("%w: image is over the limit of %d bytes", errFormTooLarge, maxImage)
			}
		case slices.Contains(styleFormFields, name):
			if _, dup := f.fields[name]; dup {
				return nil, fmt.Errorf("field %q given twice", name)
			}
			b, err := io.ReadAll(io.LimitReader(p, stylesMaxFieldBytes+1))
			if err != nil {
				return nil, err
			}
			if len(b) > stylesMaxFieldBytes {
				return nil, fmt.Errorf("field %q is over %d bytes", name, stylesMaxFieldBytes)
			}
			f.fields[name] = string(b)
		default:
			return nil, fmt.Errorf("unknown field %q (known: %s)", name, strings.Join(styleFormFields, ", "))
		}
		p.Close()
	}
}

// addOptions turns the form's optional fields into AddOptions.
func (a *stylesAPI) addOptions(f *styleForm) (styles.AddOptions, error) {
	o := styles.AddOptions{
		Preset: strings.TrimSpace(f.fields["preset"]), StyleSize: styles.DefaultStyleSize,
		Limits: imaging.Limits{MaxBytes: a.cfg.MaxUploadBytes, MaxPixels: a.cfg.MaxUploadPixels},
	}
	bad := func(field, format string, args ...any) (styles.AddOptions, error) {
		return o, fmt.Errorf("%w: %s: %s", styles.ErrInvalidOptions, field, fmt.Sprintf(format, args...))
	}
	num := func(field string) (*float64, error) {
		s, ok := f.fields[field]
		if !ok {
			return nil, nil
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil {
			_, err = bad(field, "%q is not a number", s)
			return nil, err
		}
		return &v, nil
	}
	if s, ok := f.fields["style_size"]; ok {
		v, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil {
			return bad("style_size", "%q is not a whole number of pixels", s)
		}
		o.StyleSize = v
	}
	var err error
	if o.Content, err = num("content_weight"); err != nil {
		return o, err
	}
	if o.TV, err = num("tv_weight"); err != nil {
		return o, err
	}
	if s, ok := f.fields["style_weights"]; ok {
		w, err := styles.ParseStyleWeights(s)
		if err != nil {
			return bad("style_weights", "%v", err)
		}
		o.Style = w
	}
	if s, ok := f.fields["replace"]; ok {
		v, err := strconv.ParseBool(strings.TrimSpace(s))
		if err != nil {
			return bad("replace", "%q is not true or false", s)
		}
		o.Replace = v
	}
	return o, nil
}
