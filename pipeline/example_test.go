package pipeline_test

import (
	"log"

	"github.com/labstack/echo/v4"

	"github.com/styleproxy/styleproxy/filters/grayscale"
	"github.com/styleproxy/styleproxy/pipeline"
	"github.com/styleproxy/styleproxy/plugin"
)

// Mount styleproxy's routes on an existing Echo server, with the grayscale and blur filters, a
// local folder as the source and a memory cache. examples/mount is the whole program.
func ExampleMount() {
	e := echo.New()
	e.HTTPErrorHandler = pipeline.ErrorHandler

	src, err := pipeline.NewDirSource("./images")
	if err != nil {
		log.Fatal(err)
	}
	cache, err := pipeline.NewCache(pipeline.CacheConfig{MemBytes: 256 << 20})
	if err != nil {
		log.Fatal(err)
	}
	cfg := pipeline.NewDefaultConfig()
	cfg.Source = src
	cfg.Filters = []plugin.Filter{grayscale.New(), grayscale.NewBlur()}
	cfg.Cache = cache
	_, err = pipeline.Mount(e, cfg)
	if err != nil {
		log.Fatal(err)
	}
	// e.Start(":8080") now serves GET and HEAD /img/{path}?w=&h=&fit=&format=&q=&grayscale=&blur=
}
