// The module's root holds no code, only this test: the README's account of the package tree
// (the flow diagram and the package table) is checked against what `go list` reports.
package styleproxy_test

import (
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

const module = "github.com/styleproxy/styleproxy/"

type goPackage struct {
	ImportPath string
	Name       string
	GoFiles    []string
	Imports    []string
}

func listPackages(t *testing.T) []goPackage {
	t.Helper()
	out, err := exec.Command("go", "list", "-json", "./...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	var pkgs []goPackage
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for {
		var p goPackage
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		if len(p.GoFiles) > 0 {
			pkgs = append(pkgs, p)
		}
	}
	if len(pkgs) < 10 {
		t.Fatalf("go list found only %d packages", len(pkgs))
	}
	return pkgs
}

func readme(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// flowLayers are the top-level folders the README's "How a request flows" diagram lists, top
// first.
func flowLayers(t *testing.T, doc string) map[string]int {
	t.Helper()
	i := strings.Index(doc, "## How a request flows")
	if i < 0 {
		t.Fatal("README has no \"How a request flows\"")
	}
	diagram := doc[i:]
	start := strings.Index(diagram, "```\n")
	end := strings.Index(diagram[start+4:], "```")
	rank := map[string]int{}
	for _, m := range regexp.MustCompile(`(?m)^  ([a-z]+) +\S`).FindAllStringSubmatch(diagram[start+4:start+4+end], -1) {
		rank[m[1]] = len(rank)
	}
	if len(rank) < 8 {
		t.Fatalf("the diagram names only %v", rank)
	}
	return rank
}

// layer is the diagram's layer of a package path relative to the module: its first folder.
func layer(rel string) string { return strings.SplitN(rel, "/", 2)[0] }

// testHelper says whether rel is a package only tests import (testutil, storetest, ...).
func testHelper(rel string) bool {
	return strings.HasSuffix(rel, "test") || strings.HasPrefix(rel, "internal/testutil")
}

func TestNoPackageImportsOneAboveIt(t *testing.T) {
	rank := flowLayers(t, readme(t))
	for _, p := range listPackages(t) {
		rel := strings.TrimPrefix(p.ImportPath, module)
		for _, imp := range p.Imports {
			if !strings.HasPrefix(imp, module) {
				continue
			}
			dep := strings.TrimPrefix(imp, module)
			switch {
			case testHelper(dep) && !testHelper(rel):
				t.Errorf("%s imports the test helper %s", rel, dep)
			case dep == "internal/atomicfile" || testHelper(rel):
				// A leaf anyone may use; test helpers sit beside what they test.
			case rel == "internal/atomicfile":
				t.Errorf("internal/atomicfile imports %s; it is a leaf", dep)
			default:
				pr, pok := rank[layer(rel)]
				dr, dok := rank[layer(dep)]
				if !dok {
					t.Errorf("%s imports %s, which the README's flow does not list", rel, dep)
				} else if pok && dr <= pr {
					t.Errorf("%s imports %s, which is not below it in the README's flow", rel, dep)
				}
			}
		}
	}
}

// filterMethod is plugin.Filter's Parse as `go doc` prints it.
var filterMethod = regexp.MustCompile(`(?m)^func \([^)]*\) Parse\(\S+ context\.Context, \S+ url\.Values\) \(plugin\.Options, error\)$`)

func TestFiltersHoldsOnlyFilters(t *testing.T) {
	for _, p := range listPackages(t) {
		rel := strings.TrimPrefix(p.ImportPath, module)
		if layer(rel) != "filters" {
			continue
		}
		out, err := exec.Command("go", "doc", "-all", "./"+rel).Output()
		if err != nil {
			t.Fatalf("go doc %s: %v", rel, err)
		}
		if !filterMethod.Match(out) {
			t.Errorf("%s holds no plugin.Filter: no type has its Parse method", rel)
		}
	}
}

func TestREADMEPackageTableMatchesTheTree(t *testing.T) {
	doc := readme(t)
	i := strings.Index(doc, "| package | owns |")
	if i < 0 {
		t.Fatal("README has no package table")
	}
	table, _, _ := strings.Cut(doc[i:], "\n\n")
	listed := map[string]bool{}
	for _, m := range regexp.MustCompile("(?m)^\\| `([a-z0-9/]+)` \\|").FindAllStringSubmatch(table, -1) {
		listed[m[1]] = true
	}
	for _, p := range listPackages(t) {
		rel := strings.TrimPrefix(p.ImportPath, module)
		if !listed[rel] {
			t.Errorf("package %s is missing from the README's package table", rel)
		}
		delete(listed, rel)
	}
	for rel := range listed {
		if _, err := os.Stat(rel); err != nil {
			t.Errorf("the README's package table lists %s, which is not in the tree", rel)
		}
	}
}
