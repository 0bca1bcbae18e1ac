# The newcomer's entry points (see README.md). Every target installs what it needs itself.
SHELL := /bin/bash
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
GO ?= go
BIN := bin/styleproxy

.PHONY: deps build test bench run clean

# System packages (libvips for decoding, resizing and encoding) and Go modules.
deps:
	@if ! pkg-config --exists vips 2>/dev/null; then \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq libvips-dev pkg-config; \
	fi
	$(GO) mod download

build: deps
	$(GO) build -o $(BIN) ./cmd/styleproxy

# The whole test suite. Tests read ../shared (weights, images, golden values) beside the checkout;
# STYLEPROXY_WEIGHTS overrides where the weights come from.
test: deps
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) test -count=1 ./...

# Speed against the reference, side by side (needs python3-torch python3-torchvision for the reference).
bench: build
	bench/compare.sh

# Stylize the demo photo (fetches the weights into the user cache first if none are found).
run: build
	@$(BIN) version >/dev/null 2>&1; $(BIN) version | grep -q sha256 || $(BIN) weights fetch
	$(BIN) stylize --content ../shared/images/tubingen.jpg --style ../shared/images/starry_night.jpg \
		--preset starry_night -o out/tubingen_starry.png
	@echo "wrote out/tubingen_starry.png"

clean:
	rm -rf bin out
