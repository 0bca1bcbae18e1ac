// Command mount shows styleproxy's image pipeline mounted on an ordinary Echo application: the
// app keeps its own routes and adds GET and HEAD /img/{path} with pipeline.Mount, here with the
// grayscale and blur filters (no neural style filter, so it needs no weights) and a local folder
// as the source.
//
//	go run ./examples/mount --dir ../shared/images --addr 127.0.0.1:8080
//	curl -o kitten.webp 'http://127.0.0.1:8080/img/kitten.jpg?w=300&h=300&fit=cover&grayscale=1&format=webp'
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/styleproxy/styleproxy/filters/grayscale"
	"github.com/styleproxy/styleproxy/imaging"
	"github.com/styleproxy/styleproxy/pipeline"
	"github.com/styleproxy/styleproxy/plugin"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "listen address")
	dir := flag.String("dir", "./images", "folder of source images")
	cacheMB := flag.Int64("cache-mem-mb", 64, "memory cache budget in MiB (0 = none)")
	cacheDir := flag.String("cache-dir", "", "disk cache folder (empty = none)")
	quiet := flag.Bool("quiet", false, "log only warnings and errors")
	flag.Parse()
	if err := run(*addr, *dir, *cacheMB<<20, *cacheDir, *quiet); err != nil {
		fmt.Fprintln(os.Stderr, "mount:", err)
		os.Exit(1)
	}
}

func run(addr, dir string, cacheBytes int64, cacheDir string, quiet bool) error {
	imaging.Startup()
	defer imaging.Shutdown()
	level := slog.LevelInfo
	if quiet {
		level = slog.LevelWarn
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	// The application: an Echo server with routes of its own.
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = pipeline.ErrorHandler // every error as {"error": ..., "status": ...}
	e.GET("/", func(c echo.Context) error {
		return c.HTML(http.StatusOK, `<p>An Echo app with styleproxy mounted. Try
<a href="/img/kitten.jpg?w=300&amp;grayscale=1">/img/kitten.jpg?w=300&amp;grayscale=1</a>.</p>`)
	})

	// styleproxy's pipeline on the same server.
	src, err := pipeline.NewDirSource(dir)
	if err != nil {
		return err
	}
	defer src.Close()
	cache, err := pipeline.NewCache(pipeline.CacheConfig{MemBytes: cacheBytes, Dir: cacheDir})
	if err != nil {
		return err
	}
	cfg := pipeline.NewDefaultConfig()
	cfg.Source = src
	cfg.Filters = []plugin.Filter{grayscale.New(), grayscale.NewBlur()}
	cfg.Cache = cache
	cfg.Logger = logger
	p, err := pipeline.Mount(e, cfg)
	if err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- e.Start(addr) }()
	logger.Info("listening", "addr", addr, "source", src.Dir())
	select {
	case err := <-errc:
		if !errors.Is(err, http.ErrServerClosed) {
			return err
		}
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.Shutdown(sctx); err != nil {
		return err
	}
	return p.Wait(sctx) // let work whose requesters left reach the cache
}
