package server

import (
	"context"
	"embed"
	"errors"
	"io/fs"
	"log/slog"
	"mime"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/styleproxy/styleproxy/pipeline"
)

// webFS holds the gallery page: plain HTML, CSS and JavaScript, no build step and nothing loaded
// from elsewhere, so the page works offline.
//
//go:embed web
var webFS embed.FS

const (
	// galleryMaxSamples caps the list /api/samples answers.
	galleryMaxSamples = 500
	// galleryMaxVisits caps the folder entries one /api/samples request looks at, so a source
	// folder with millions of files costs a bounded walk.
	galleryMaxVisits = 20000
	// galleryCSP keeps the page to this server: scripts, styles, images and fetches from 'self'
	// (blob: for the preview of an upload). No inline script or style.
	galleryCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob:; " +
		"connect-src 'self'; form-action 'none'; base-uri 'none'; frame-ancestors 'none'"
)

// galleryImageExts are the extensions /api/samples lists, lower case.
var galleryImageExts = map[string]bool{
	".jpg": true, ".jpeg": true, ".png": true, ".webp": true, ".gif": true,
	".tif": true, ".tiff": true, ".avif": true,
}

// progressReporter is what the gallery reads of the pipeline (a *pipeline.Pipeline).
type progressReporter interface {
	Running() []pipeline.Job
	Queued() int
}

// mountGallery serves the gallery (issue #5) on e:
//
//	GET /               the gallery page: the styles as thumbnails, a sample and a style to try
//	                    with iterations and strength, original and result side by side with the
//	                    result's URL, the progress of running work, and an admin form that
//	                    registers a style (POST /admin/styles with the bearer token)
//	GET /gallery/{file} the page's script and stylesheet (embedded from server/web)
//	GET /api/samples    JSON array of the image paths in the source, for /img/{path}: for a
//	                    folder source the files with an image extension (jpg, jpeg, png, webp,
//	                    gif, tif, tiff, avif), as slash-separated paths relative to the folder,
//	                    sorted, at most 500, hidden files and folders and symbolic links left out;
//	                    an empty array for other sources
//	GET /api/progress   JSON {"running": [pipeline.Job...], "queued": N}: the stylizations holding a
//	                    worker with their iteration (step of total), and how many wait for one
//
// Errors are plugin's JSON error form.
//
// The page and its files go on the public app, progress on the admin app (the same app unless
// --admin-addr). With signing on, the public app's sample list is empty: the source's file
// names are for operators, on the admin app.
func mountGallery(public, admin *echo.Echo, p progressReporter, source pipeline.Source, signed bool, log *slog.Logger) {
	g := &gallery{progress: p, log: log}
	if ds, ok := source.(*pipeline.DirSource); ok {
		g.dir = ds.Dir()
	}
	get := []string{http.MethodGet, http.MethodHead}
	public.Match(get, "/", g.index)
	public.Match(get, "/gallery/*", g.asset)
	admin.GET("/api/progress", g.progressJSON)
	if !signed {
		public.GET("/api/samples", g.samples)
		return
	}
	if admin != public {
		admin.GET("/api/samples", g.samples)
	}
	public.GET("/api/samples", (&gallery{progress: p, log: log}).samples) // lists nothing
}

type gallery struct {
	progress progressReporter
	dir      string // the source folder; "" for other sources
	log      *slog.Logger
}

func (g *gallery) index(c echo.Context) error {
	b, err := webFS.ReadFile("web/index.html")
	if err != nil {
		return pipeline.WriteError(c, http.StatusInternalServerError, "gallery page missing from the build")
	}
	h := c.Response().Header()
	h.Set("Content-Security-Policy", galleryCSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set(echo.HeaderCacheControl, "no-cache")
	return c.Blob(http.StatusOK, echo.MIMETextHTMLCharsetUTF8, b)
}

// asset serves one file of web/ other than the page itself (no listings, no subfolders).
func (g *gallery) asset(c echo.Context) error {
	name := c.Param("*")
	if name == "" || strings.ContainsAny(name, `/\`) || strings.HasPrefix(name, ".") || name == "index.html" {
		return pipeline.WriteError(c, http.StatusNotFound, "no such gallery file")
	}
	b, err := webFS.ReadFile("web/" + name)
	if err != nil {
		return pipeline.WriteError(c, http.StatusNotFound, "no such gallery file")
	}
	ct := mime.TypeByExtension(path.Ext(name))
	if ct == "" {
		ct = echo.MIMEOctetStream
	}
	h := c.Response().Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set(echo.HeaderCacheControl, "no-cache")
	return c.Blob(http.StatusOK, ct, b)
}

func (g *gallery) samples(c echo.Context) error {
	list := []string{}
	if g.dir != "" {
		var err error
		if list, err = listSamples(c.Request().Context(), g.dir); err != nil {
			if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
				return pipeline.WriteError(c, http.StatusServiceUnavailable, "request cancelled while listing the source")
			}
			g.log.Error("listing the source failed", "id", requestID(c), "error", err.Error())
			return pipeline.WriteError(c, http.StatusInternalServerError, "the source folder could not be listed")
		}
	}
	c.Response().Header().Set(echo.HeaderCacheControl, "no-cache")
	return c.JSON(http.StatusOK, list)
}

// errWalkDone stops a walk that has what it needs.
var errWalkDone = errors.New("walk done")

// listSamples walks dir for image files: relative slash paths, sorted, at most galleryMaxSamples.
// Hidden entries (a name starting with ".") and symbolic links are skipped, folders included,
// so nothing outside dir is listed; so are names the pipeline's path rule would refuse.
func listSamples(ctx context.Context, dir string) ([]string, error) {
	out := []string{}
	visits := 0
	err := fs.WalkDir(os.DirFS(dir), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == "." {
				return err
			}
			if d != nil && d.IsDir() {
				return fs.SkipDir // an unreadable subfolder: list the rest
			}
			return nil
		}
		if p == "." {
			return nil
		}
		if visits++; visits > galleryMaxVisits {
			return errWalkDone
		}
		if visits%256 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		if strings.HasPrefix(d.Name(), ".") || d.Type()&fs.ModeSymlink != 0 {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if d.IsDir() || !d.Type().IsRegular() {
			return nil
		}
		if !galleryImageExts[strings.ToLower(filepath.Ext(p))] {
			return nil
		}
		if clean, err := pipeline.CleanPath(p); err != nil || clean != p {
			return nil
		}
		out = append(out, p)
		if len(out) >= galleryMaxSamples {
			return errWalkDone
		}
		return nil
	})
	if err != nil && !errors.Is(err, errWalkDone) {
		return nil, err
	}
	sort.Strings(out)
	return out, nil
}

// progressBody is /api/progress's answer.
type progressBody struct {
	Running []pipeline.Job `json:"running"`
	Queued  int            `json:"queued"`
}

func (g *gallery) progressJSON(c echo.Context) error {
	body := progressBody{Running: []pipeline.Job{}}
	if g.progress != nil {
		if r := g.progress.Running(); r != nil {
			body.Running = r
		}
		body.Queued = g.progress.Queued()
	}
	c.Response().Header().Set(echo.HeaderCacheControl, "no-store")
	return c.JSON(http.StatusOK, body)
}
