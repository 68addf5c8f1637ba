package layout

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"slices"
	"sort"
	"strings"
	"testing"
)

const module = "github.com/cloudkey/cloudkey"

// domains are the domain roots: each and every package under it.
var domains = []string{"unlock", "visitor", "tenant", "access"}

// forbiddenInDomain are the import path prefixes domain packages must
// not import (an entry ending in "/" is a prefix; otherwise the path
// itself or anything under it).
var forbiddenInDomain = []struct{ prefix, what string }{
	{"github.com/redis/go-redis", "go-redis"},
	{"github.com/go-redis/", "go-redis (older module path)"},
	{"github.com/alicebob/miniredis", "miniredis"},
	{"google.golang.org/grpc", "gRPC"},
	{module + "/gen", "the generated API (gen/)"},
}

// forbiddenForLoadtest are the wiring packages loadtest must not reach.
var forbiddenForLoadtest = []string{module + "/internal/setup", module + "/server"}

// maxTopLevelFolders bounds the tracked top-level folders.
const maxTopLevelFolders = 14

// pkg is what `go list -json` says of a package.
type pkg struct {
	ImportPath string
	Imports    []string // non-test files' direct imports
	Deps       []string // non-test files' transitive imports
}

// violation is one broken rule: where, what, and what to do.
type violation struct{ where, what, fix string }

func (v violation) String() string { return fmt.Sprintf("%s: %s\n\tfix: %s", v.where, v.what, v.fix) }

// rule is one layout rule, checked against the module's packages.
type rule struct {
	name  string
	check func(t *testing.T, pkgs map[string]*pkg) []violation
}

var rules = []rule{
	{"domain packages import no Redis, miniredis, gRPC or gen", checkDomainImports},
	{"loadtest does not depend on internal/setup or server", checkLoadtestDeps},
	{fmt.Sprintf("at most %d top-level folders", maxTopLevelFolders), checkTopLevel},
	{"the edge and the command import only what their package docs allow", checkEdgeImports},
}

// edgeForbidden are the direct imports each edge package's doc rules out:
// server is the transport (no access-system adapter, no Redis or cache,
// not the wiring or the commands); the command speaks to cloudkey's
// packages, not to the generated API, gRPC or Redis itself.
var edgeForbidden = map[string][]string{
	module + "/server": {
		module + "/access/openpath", module + "/access/sim", module + "/access/kisi", module + "/access/kisisim",
		module + "/cache", "github.com/redis/go-redis",
		module + "/internal/setup", module + "/loadtest", module + "/cmd",
	},
	module + "/cmd/cloudkey": {module + "/gen", "google.golang.org/grpc", "github.com/redis/go-redis"},
}

func checkEdgeImports(t *testing.T, pkgs map[string]*pkg) []violation {
	var out []violation
	for _, path := range sortedKeys(edgeForbidden) {
		p, ok := pkgs[path]
		if !ok {
			t.Fatalf("%s not found: the rule checks nothing (package moved?)", path)
		}
		for _, imp := range p.Imports {
			for _, bad := range edgeForbidden[path] {
				if under(imp, bad) {
					out = append(out, violation{
						where: path,
						what:  "imports " + imp,
						fix:   "reach it through the domain services or the wiring, as the package doc says",
					})
				}
			}
		}
	}
	return out
}

func TestLayout(t *testing.T) {
	pkgs := listPackages(t)
	for _, r := range rules {
		t.Run(r.name, func(t *testing.T) {
			for _, v := range r.check(t, pkgs) {
				t.Error(v)
			}
		})
	}
}

// listPackages reads the module's packages from `go list -json`.
func listPackages(t *testing.T) map[string]*pkg {
	t.Helper()
	cmd := exec.Command("go", "list", "-e", "-json=ImportPath,Imports,Deps", module+"/...")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	pkgs := map[string]*pkg{}
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		p := new(pkg)
		if err := dec.Decode(p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("go list output: %v", err)
		}
		pkgs[p.ImportPath] = p
	}
	if len(pkgs) == 0 {
		t.Fatal("go list found no packages")
	}
	return pkgs
}

// under reports whether path is root or a package under it.
func under(path, root string) bool {
	return path == root || strings.HasPrefix(path, root+"/")
}

// isDomain reports whether path is a domain package; adapter is set for
// a Redis adapter under a domain (last element ending in "redis").
func isDomain(path string) (domain, adapter bool) {
	for _, d := range domains {
		if under(path, module+"/"+d) {
			last := path[strings.LastIndex(path, "/")+1:]
			return true, strings.HasSuffix(last, "redis")
		}
	}
	return false, false
}

func checkDomainImports(t *testing.T, pkgs map[string]*pkg) []violation {
	var out []violation
	seen := 0
	for _, path := range sortedKeys(pkgs) {
		domain, adapter := isDomain(path)
		if !domain || adapter {
			continue
		}
		seen++
		for _, imp := range pkgs[path].Imports {
			for _, f := range forbiddenInDomain {
				if !under(imp, strings.TrimSuffix(f.prefix, "/")) && !strings.HasPrefix(imp, f.prefix) {
					continue
				}
				out = append(out, violation{
					where: path,
					what:  fmt.Sprintf("domain package imports %s (%s)", imp, f.what),
					fix: "keep the domain free of storage and transport: declare the interface it needs in the domain package " +
						"and implement it in an adapter package whose last path element ends in \"redis\" (e.g. " +
						strings.TrimPrefix(path, module+"/") + "/" + path[strings.LastIndex(path, "/")+1:] + "redis), " +
						"or map gRPC/gen types in server/; the wiring (internal/setup) connects them",
				})
			}
		}
	}
	if seen == 0 {
		t.Fatal("no domain package found: the rule checks nothing (domains renamed?)")
	}
	return out
}

func checkLoadtestDeps(t *testing.T, pkgs map[string]*pkg) []violation {
	var out []violation
	seen := 0
	for _, path := range sortedKeys(pkgs) {
		if !under(path, module+"/loadtest") {
			continue
		}
		seen++
		for _, dep := range pkgs[path].Deps {
			for _, bad := range forbiddenForLoadtest {
				if !under(dep, bad) {
					continue
				}
				out = append(out, violation{
					where: path,
					what:  fmt.Sprintf("depends on %s: %s", dep, strings.Join(importChain(pkgs, path, dep), " -> ")),
					fix: "loadtest is a client of the public API: take what it needs from the target through " +
						"Config.StartTarget (internal/selftarget builds cloudkey), not by importing the wiring",
				})
			}
		}
	}
	if seen == 0 {
		t.Fatal("no loadtest package found: the rule checks nothing (loadtest moved?)")
	}
	return out
}

// importChain is a shortest import path from "from" to "to" through the
// module's packages (non-test imports).
func importChain(pkgs map[string]*pkg, from, to string) []string {
	prev := map[string]string{from: ""}
	queue := []string{from}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		if p == to {
			var chain []string
			for ; p != ""; p = prev[p] {
				chain = append(chain, strings.TrimPrefix(p, module+"/"))
			}
			slices.Reverse(chain)
			return chain
		}
		if pkgs[p] == nil {
			continue
		}
		for _, imp := range pkgs[p].Imports {
			if _, ok := prev[imp]; !ok {
				prev[imp] = p
				queue = append(queue, imp)
			}
		}
	}
	return []string{from, "...", to}
}

func checkTopLevel(t *testing.T, _ map[string]*pkg) []violation {
	cmd := exec.Command("git", "ls-files", "--full-name", ":/")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("git ls-files: %v\n%s", err, stderr.String())
	}
	set := map[string]bool{}
	for _, f := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		dir, _, isDir := strings.Cut(f, "/")
		if isDir && !strings.HasPrefix(dir, ".") {
			set[dir] = true
		}
	}
	folders := sortedKeys(set)
	if len(folders) == 0 {
		t.Fatal("git ls-files lists no folder: the rule checks nothing")
	}
	if len(folders) <= maxTopLevelFolders {
		return nil
	}
	return []violation{{
		where: "top level",
		what:  fmt.Sprintf("%d tracked folders, at most %d: %s", len(folders), maxTopLevelFolders, strings.Join(folders, " ")),
		fix: "fold a package into the domain it serves (e.g. resident/ into unlock/) " +
			"or move helpers under internal/; a new top-level folder needs one to go",
	}}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
