# The newcomer's entry points (see README.md). Every target installs what it needs itself.
SHELL := /bin/bash
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
GO ?= go
BIN := bin/styleproxy

.PHONY: deps browser varnish nats build test bench run serve clean

# Serve the shared test photos when they are beside the checkout, else ./images.
SOURCE ?= $(if $(wildcard ../shared/images),../shared/images,./images)
DATA ?= ./data

# System packages (libvips for decoding, resizing and encoding) and Go modules.
deps:
	@if ! pkg-config --exists vips 2>/dev/null; then \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq libvips-dev pkg-config; \
	fi
	$(GO) mod download

# Headless Chromium for the gallery's browser test (server/browser_test.go), which fails without it.
browser:
	@if ! command -v chromium >/dev/null 2>&1; then \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium; \
	fi

# Varnish with the xkey module (varnish-modules) for the CDN test (deploy/varnish), which fails
# without them.
varnish:
	@if ! command -v varnishd >/dev/null 2>&1 && [ ! -x /usr/sbin/varnishd ] || \
		! ls /usr/lib/*/varnish/vmods/libvmod_xkey.so >/dev/null 2>&1; then \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq varnish varnish-modules; \
	fi

# styleproxy is built with Go 1.26's SIMD experiment: it turns on the AVX-512 kernels of GoMLX's
# pure-Go backend, which make an iteration several times faster (README, Speed). The same binary
# runs on CPUs without AVX-512: GoMLX checks the CPU at start-up and keeps its portable kernels.
SIMD := GOEXPERIMENT=simd

# Debian's nats-server for the cluster test (cmd/styleproxy/cluster_test.go), which fails without
# it; the package tests start NATS in-process from the Go module.
nats:
	@if ! command -v nats-server >/dev/null 2>&1 && [ ! -x /usr/sbin/nats-server ]; then \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq nats-server; \
	fi

build: deps
	$(SIMD) $(GO) build -o $(BIN) ./cmd/styleproxy

# The whole test suite. Tests read ../shared (weights, images, golden values) beside the checkout;
# STYLEPROXY_WEIGHTS overrides where the weights come from. The gallery's browser test drives
# Chromium and saves a screenshot to STYLEPROXY_SCREENSHOT (and /tmp/styleproxy-gallery.png).
test: deps browser varnish nats
	$(SIMD) $(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(SIMD) $(GO) test -count=1 ./...
	# The plain build (no experiment: what `go build` or `go install` give) must keep compiling and
	# computing right, with the portable kernels that CPUs without AVX-512 run.
	$(GO) vet ./...
	$(GO) test -count=1 ./engine/ ./cmd/styleproxy/
	# The concurrency tests again under the race detector (the library, the pipeline, the cluster).
	$(GO) test -count=1 -race ./styles/ ./pipeline/ ./cluster/

# Speed against the reference, side by side (needs python3-torch python3-torchvision for the reference).
bench: build
	bench/compare.sh

# Stylize the demo photo (fetches the weights into the user cache first if none are found).
run: build
	@$(BIN) version >/dev/null 2>&1; $(BIN) version | grep -q sha256 || $(BIN) weights fetch
	$(BIN) stylize --content ../shared/images/tubingen.jpg --style ../shared/images/starry_night.jpg \
		--preset starry_night -o out/tubingen_starry.png
	@echo "wrote out/tubingen_starry.png"

# Set up and start the server: weights fetched into the user cache if none are found, the
# reference's three artworks registered as styles when the shared images are there.
serve: build
	@$(BIN) version 2>/dev/null | grep -q sha256 || $(BIN) weights fetch
	@mkdir -p images $(DATA)
	@if [ -d ../shared/images ]; then for s in starry_night the_scream composition_vii; do \
		$(BIN) styles list --data $(DATA) | grep -q "^$$s " || \
		$(BIN) styles add $$s ../shared/images/$$s.jpg --preset $$s --data $(DATA) --backend go; done; fi
	$(BIN) serve --source $(SOURCE) --data $(DATA)

clean:
	rm -rf bin out
