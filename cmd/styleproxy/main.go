// Command styleproxy is an image server that restyles images on the fly with neural style
// transfer, and the tools around it. Run "styleproxy --help" for the subcommands.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/styleproxy/styleproxy/imaging"
)

// version is set at build time (-ldflags "-X main.version=...").
var version = "dev"

func commands() []*command {
	return []*command{serveCommand(), stylizeCommand(), signCommand(), stylesAddCommand(), stylesListCommand(), stylesRmCommand(), weightsFetchCommand(), versionCommand()}
}

func main() {
	imaging.Startup()
	code := run(os.Args[1:], os.Stdout, os.Stderr)
	imaging.Shutdown()
	os.Exit(code)
}

// run executes one command line and returns the process's exit status: 0 on success, 2 for bad
// input, 1 for other failures, with the error as one line on stderr.
func run(args []string, stdout, stderr io.Writer) int {
	cmds := commands()
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		mainUsage(stdout, cmds)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	name := args[0]
	rest := args[1:]
	// Two-word commands ("weights fetch").
	if len(rest) > 0 && !strings.HasPrefix(rest[0], "-") {
		for _, c := range cmds {
			if c.name == name+" "+rest[0] {
				name, rest = c.name, rest[1:]
				break
			}
		}
	}
	for _, c := range cmds {
		if c.name != name {
			continue
		}
		c.out = stdout
		positional, err := c.parse(rest)
		if errors.Is(err, flag.ErrHelp) {
			c.usage(stdout)
			return 0
		}
		if err == nil {
			err = c.run(positional)
		}
		if err == nil {
			return 0
		}
		fmt.Fprintf(stderr, "styleproxy %s: %s\n", c.name, oneLine(err.Error()))
		var ue usageError
		if errors.As(err, &ue) {
			return 2
		}
		return 1
	}
	fmt.Fprintf(stderr, "styleproxy: unknown command %q (see styleproxy --help)\n", strings.Join(args[:min(2, len(args))], " "))
	return 2
}

func mainUsage(w io.Writer, cmds []*command) {
	fmt.Fprintln(w, "styleproxy restyles images with neural style transfer.\n\nUsage: styleproxy COMMAND [ARGS] [FLAGS]\n\nCommands:")
	for _, c := range cmds {
		fmt.Fprintf(w, "  %-16s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nEvery flag may also be given as an environment variable STYLEPROXY_<FLAG> (e.g. --max-iters as\nSTYLEPROXY_MAX_ITERS); the command line wins. \"styleproxy COMMAND --help\" lists a command's flags.")
	for _, c := range cmds {
		fmt.Fprintln(w)
		c.usage(w)
	}
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
