package pipeline

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/styleproxy/styleproxy/imaging"
	"github.com/styleproxy/styleproxy/plugin"
)

// request is one parsed request.
type request struct {
	id      string // the X-Request-Id of the request that started the computation, for logs
	path    string
	image   ImageOptions
	filters []active
	heavy   bool          // the output's own computation needs a worker
	staged  plugin.Staged // the first filter, when its heavy part is a shared stage
	// floating: an option follows something that may change under the same URL.
	floating  bool
	purgeKeys []string
	version   string // the source's version
	data      []byte // the source's bytes, when they had to be fetched to version them
	key       string
	parent    context.Context // for values; computations run detached from its cancellation
}

type active struct {
	f plugin.Filter
	o plugin.Options
	q url.Values // the filter's own parameters, for a worker to parse again
}

// prepare parses and checks the request, versions the source and computes the cache key.
func (p *Pipeline) prepare(ctx context.Context, c echo.Context) (*request, error) {
	req := c.Request()
	pth, err := requestPath(c)
	if err != nil {
		return nil, err
	}
	q, err := p.query(req.URL.Path, req.URL.RawQuery)
	if err != nil {
		return nil, err
	}
	r := &request{id: requestID(c), path: pth, parent: req.Context()}
	if r.image, err = ParseImageOptions(q, p.cfg.MaxOutputPx, req.Header.Get("Accept")); err != nil {
		return nil, err
	}
	if err := p.parseFilters(ctx, r, q); err != nil {
		return nil, err
	}
	if err := p.versionSource(ctx, r); err != nil {
		return nil, err
	}
	r.key = p.cacheKey(r)
	r.purgeKeys = append(r.purgeKeys, "source:"+(&url.URL{Path: r.path}).EscapedPath())
	return r, nil
}

// requestPath is the cleaned {path} of /img/{path}.
func requestPath(c echo.Context) (string, error) {
	raw := c.Param("*")
	if c.Request().URL.RawPath != "" {
		u, err := url.PathUnescape(raw)
		if err != nil {
			return "", &plugin.ParamError{Param: "path", Reason: "bad escape"}
		}
		raw = u
	}
	return CleanPath(raw)
}

// query parses the query string, checks its signature, refuses parameters nobody owns or that
// are given twice, and expands a preset (after the signature: it covers the URL as given).
func (p *Pipeline) query(urlPath, rawQuery string) (url.Values, error) {
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return nil, &plugin.ParamError{Param: "query", Reason: "malformed query string"}
	}
	// ParseQuery skips empty fields; refusing them keeps one spelling per request.
	if rawQuery != "" && slices.Contains(strings.Split(rawQuery, "&"), "") {
		return nil, &plugin.ParamError{Param: "query", Reason: "stray & (an empty parameter)"}
	}
	if p.cfg.SigningKey != nil && !Verify(p.cfg.SigningKey, urlPath, q) {
		if len(q["sig"]) == 0 {
			return nil, &ForbiddenError{Reason: "missing signature (sig)"}
		}
		return nil, &ForbiddenError{Reason: "invalid signature (sig)"}
	}
	names := make([]string, 0, len(q))
	for k := range q {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		if !p.owner[k] {
			return nil, &plugin.ParamError{Param: k, Reason: "unknown parameter"}
		}
		if len(q[k]) > 1 {
			return nil, &plugin.ParamError{Param: k, Reason: "given more than once"}
		}
	}
	return q, p.cfg.Presets.expand(q)
}

// parseFilters lets each filter parse its own parameters.
func (p *Pipeline) parseFilters(ctx context.Context, r *request, q url.Values) error {
	for _, f := range p.cfg.Filters {
		sub := url.Values{}
		for _, k := range f.Params() {
			if v, ok := q[k]; ok {
				sub[k] = v
			}
		}
		o, err := f.Parse(ctx, sub)
		if err != nil {
			if sc := plugin.StatusCoder(nil); errors.As(err, &sc) {
				return err
			}
			return fmt.Errorf("filter %s: %w", f.Name(), err)
		}
		if o == nil {
			continue
		}
		// A stage is shared only by a first filter: its input is then the source itself.
		if st, ok := o.(plugin.Staged); ok && len(r.filters) == 0 && st.StageKey() != "" {
			r.staged = st
		} else {
			r.heavy = r.heavy || o.Heavy()
		}
		if fl, ok := o.(plugin.Floating); ok && fl.Floating() {
			r.floating = true
		}
		if t, ok := o.(plugin.Tagged); ok {
			r.purgeKeys = append(r.purgeKeys, t.PurgeKeys()...)
		}
		r.filters = append(r.filters, active{f, o, sub})
	}
	return nil
}

// versionSource asks the source for the object's version, or fetches it and hashes its bytes
// when the source cannot tell.
func (p *Pipeline) versionSource(ctx context.Context, r *request) error {
	var err error
	if r.version, err = p.cfg.Source.Stat(ctx, r.path); err != nil {
		return err
	}
	if r.version == "" {
		data, _, err := p.cfg.Source.Fetch(ctx, r.path, p.cfg.MaxSourceBytes)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(data)
		r.version, r.data = "sha256="+hex.EncodeToString(sum[:]), data
	}
	return nil
}

// cacheKey is the hex SHA-256 of, each length-prefixed: the pipeline's key version, KeySalt,
// the libvips version, MaxOutputPx, the source's ID, the cleaned path, the source object's
// version, the canonical image options and each active filter's name and key, in filter order.
func (p *Pipeline) cacheKey(r *request) string {
	fields := []string{
		keyVersion, p.cfg.KeySalt, "libvips " + imaging.VipsVersion(),
		"max-output-px " + strconv.Itoa(p.cfg.MaxOutputPx),
		p.cfg.Source.ID(), r.path, r.version, r.image.Key(),
	}
	for _, a := range r.filters {
		fields = append(fields, a.f.Name(), a.o.Key())
	}
	return hashFields(fields)
}

// stageKey is the cache key of r's stage from input in: the hex SHA-256 of the stage's key
// version, KeySalt, the libvips version, the source's ID, the cleaned path, its version, the
// input's geometry (size, fit, and what comes before the optimisation: gravity, rotation, the
// background of a transparent source), and the filter's name and StageKey. What comes after it
// (sharpen, pad, format, quality) is not in it: those outputs share the stage.
func (p *Pipeline) stageKey(r *request, in stageInput) string {
	return hashFields([]string{
		stageKeyVersion, p.cfg.KeySalt, "libvips " + imaging.VipsVersion(),
		p.cfg.Source.ID(), r.path, r.version, in.key(r.image),
		r.filters[0].f.Name(), r.staged.StageKey(),
	})
}

// hashFields is the hex SHA-256 of the fields, each prefixed with its length so that no two
// lists of fields hash alike.
func hashFields(fields []string) string {
	h := sha256.New()
	for _, s := range fields {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(s)))
		h.Write(n[:])
		h.Write([]byte(s))
	}
	return hex.EncodeToString(h.Sum(nil))
}
