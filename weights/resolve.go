package weights

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

const (
	// EnvVar names the environment variable that points at a weights file,
	// or at a directory holding one.
	EnvVar = "STYLEPROXY_WEIGHTS"

	// CacheFileName is the official checkpoint's file name, used for the
	// cached copy that `styleproxy weights fetch` writes.
	CacheFileName = "squeezenet1_1-b8a52dc0.pth"

	// FeaturesFileName is the name of a features-only checkpoint, also
	// looked for when a directory is given.
	FeaturesFileName = "squeezenet1_1_features.pth"
)

// ErrNoWeights is matched (errors.Is) by Resolve's error when no weights
// file exists where it looked.
var ErrNoWeights = errors.New("no SqueezeNet weights found")

type noWeightsError struct {
	looked []string // paths tried
	where  string   // where they came from
}

func (e *noWeightsError) Error() string {
	return "weights: no SqueezeNet weights found (looked at " + strings.Join(e.looked, " and ") + ", " + e.where +
		"): run `styleproxy weights fetch`, or pass --weights FILE / set " + EnvVar
}

func (e *noWeightsError) Is(target error) bool { return target == ErrNoWeights }

// CacheDir returns the per-user cache directory: $XDG_CACHE_HOME/styleproxy,
// or ~/.cache/styleproxy when XDG_CACHE_HOME is unset or not absolute.
func CacheDir() (string, error) {
	if x := os.Getenv("XDG_CACHE_HOME"); x != "" && filepath.IsAbs(x) {
		return filepath.Join(x, "styleproxy"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil || home == "" {
		return "", fmt.Errorf("weights: cannot find a cache directory: neither XDG_CACHE_HOME nor HOME is set")
	}
	return filepath.Join(home, ".cache", "styleproxy"), nil
}

// CachePath returns where `styleproxy weights fetch` stores the official
// checkpoint: CacheDir()/CacheFileName.
func CachePath() (string, error) {
	dir, err := CacheDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, CacheFileName), nil
}

// Resolve picks the weights file to use: flag if non-empty, else
// $STYLEPROXY_WEIGHTS if set, else CachePath(). A directory stands for the
// CacheFileName or, failing that, the FeaturesFileName inside it. When the
// chosen file does not exist the error matches ErrNoWeights and says how to
// get weights. Resolve does not check the file's contents; Load does.
func Resolve(flag string) (string, error) {
	p, from := flag, "given by --weights"
	if p == "" {
		p, from = os.Getenv(EnvVar), "given by $"+EnvVar
	}
	if p == "" {
		cp, err := CachePath()
		if err != nil {
			return "", &noWeightsError{looked: []string{"the user cache"}, where: "but neither XDG_CACHE_HOME nor HOME is set"}
		}
		p, from = cp, "the user cache"
	}
	fi, err := os.Stat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return "", &noWeightsError{looked: []string{p}, where: from}
	}
	if err != nil {
		return "", fmt.Errorf("weights: %w", err)
	}
	if !fi.IsDir() {
		return p, nil
	}
	var looked []string
	for _, name := range []string{CacheFileName, FeaturesFileName} {
		c := filepath.Join(p, name)
		fi, err := os.Stat(c)
		if err == nil && !fi.IsDir() {
			return c, nil
		}
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("weights: %w", err)
		}
		looked = append(looked, c)
	}
	return "", &noWeightsError{looked: looked, where: "in the directory " + from}
}
