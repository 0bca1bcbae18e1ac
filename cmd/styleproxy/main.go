// Command styleproxy is an image server that restyles images on the fly with neural style
// transfer, and the tools around it. Run "styleproxy --help" for the subcommands.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/alecthomas/kong"

	"github.com/styleproxy/styleproxy/engine"
	"github.com/styleproxy/styleproxy/imaging"
	"github.com/styleproxy/styleproxy/server"
	"github.com/styleproxy/styleproxy/styles"
	"github.com/styleproxy/styleproxy/weights"
)

// version is set at build time (-ldflags "-X main.version=...").
var version = "dev"

// cli is the command tree. Each command's flags are its struct's fields; a command runs through
// its Run method.
type cli struct {
	Version kong.VersionFlag `help:"print the version and exit" env:"-"`

	Serve   serveCmd   `cmd:"" help:"Serve restyled images over HTTP: the origin a CDN pulls from."`
	Worker  workerCmd  `cmd:"" help:"Run stylization jobs from a NATS JetStream cluster's work queue (a GPU host behind serve --nats replicas)."`
	Stylize stylizeCmd `cmd:"" help:"Paint a content image in the style of another (the reference algorithm, run once)."`
	Sign    signCmd    `cmd:"" help:"Print URL (a full URL or /img/path?query) signed for a server run with --signing-key."`
	Styles  struct {
		Add  stylesAddCmd  `cmd:"" help:"Register IMAGE as the style NAME, computing its Gram targets once (serve picks it up live)."`
		List stylesListCmd `cmd:"" help:"List the registered styles: a table, or JSON with --json."`
		Rm   stylesRmCmd   `cmd:"" help:"Remove the style NAME from the library."`
	} `cmd:"" help:"Manage the style library: add, list, rm."`
	Weights struct {
		Fetch weightsFetchCmd `cmd:"" help:"Download torchvision's SqueezeNet 1.1 checkpoint into the user cache, checking its SHA-256."`
	} `cmd:"" help:"Manage the network weights: fetch."`
	VersionCmd versionCmd `cmd:"" name:"version" help:"Print the version, the GoMLX backend in use and the weights' hash."`
}

// stdio is where commands print their results (the process's stdout, or a buffer in tests).
type stdio struct{ out io.Writer }

func main() {
	imaging.Startup()
	code := run(os.Args[1:], os.Stdout, os.Stderr)
	imaging.Shutdown()
	os.Exit(code)
}

// run executes one command line and returns the process's exit status: 0 on success, 2 for bad
// input, 1 for other failures, with the error as one line on stderr.
func run(args []string, stdout, stderr io.Writer) (code int) {
	bare := len(args) == 0
	switch {
	case bare:
		args = []string{"--help"}
	case args[0] == "help": // "styleproxy help styles add" is "styleproxy styles add --help"
		args = append(args[1:len(args):len(args)], "--help")
	}
	// kong calls exit after --help and --version; unwinding to here lets run return the status
	// instead of ending the process (and the tests).
	type exited struct{ code int }
	defer func() {
		if r := recover(); r != nil {
			e, ok := r.(exited)
			if !ok {
				panic(r)
			}
			code = e.code
			if bare {
				code = 2
			}
		}
	}()
	parser, err := newParser(newCLI(), stdout, stderr, func(c int) { panic(exited{c}) })
	if err != nil { // a mistake in the command tree's tags
		fmt.Fprintf(stderr, "styleproxy: %s\n", oneLine(err.Error()))
		return 1
	}
	ctx, err := parser.Parse(args)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %s\n", commandPath(err), oneLine(err.Error()))
		return 2
	}
	if err := ctx.Run(&stdio{out: stdout}); err != nil {
		fmt.Fprintf(stderr, "%s: %s\n", ctx.Selected().FullPath(), oneLine(err.Error()))
		if errors.As(err, new(usageError)) {
			return 2
		}
		return 1
	}
	return 0
}

// newCLI is the command tree with each flag's default in its field.
func newCLI() *cli {
	root := &cli{Serve: newServeCmd(), Worker: workerCmd{WorkerConfig: server.DefaultWorkerConfig()}, Stylize: newStylizeCmd(), VersionCmd: versionCmd{Backend: engine.BackendAuto}}
	root.Styles.Add = newStylesAddCmd()
	root.Weights.Fetch.URL = weights.OfficialURL
	return root
}

func newParser(root *cli, stdout, stderr io.Writer, exit func(int)) (*kong.Kong, error) {
	return kong.New(root,
		kong.Name("styleproxy"),
		kong.Description("styleproxy restyles images with neural style transfer.\n\n"+
			"Most flags may also be given as environment variables, shown beside them ($STYLEPROXY_<FLAG>); "+
			"the command line wins. \"styleproxy COMMAND --help\" lists a command's flags."),
		kong.Writers(stdout, stderr),
		kong.Exit(exit),
		kong.WithHyphenPrefixedParameters(true), // "--decay-at -1" is a value, not a flag
		kong.Vars{
			"version":          fmt.Sprintf("styleproxy %s (engine %s)", version, engine.Version),
			"presets":          strings.Join(styles.PresetNames(), ","),
			"default_preset":   styles.DefaultPreset,
			"schedules":        strings.Join(engine.ScheduleNames(), ","),
			"default_schedule": string(engine.DefaultSchedule),
		},
		kong.DefaultEnvars("STYLEPROXY"),
		kong.PostBuild(defaultsFromValues),
		kong.ConfigureHelp(kong.HelpOptions{Compact: true}),
	)
}

// commandPath names the command a parse error is about ("styleproxy styles add").
func commandPath(err error) string {
	var pe *kong.ParseError
	if errors.As(err, &pe) && pe.Context != nil {
		if n := pe.Context.Selected(); n != nil {
			return n.FullPath()
		}
	}
	return "styleproxy"
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
