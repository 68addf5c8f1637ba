package server

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// The package doc's rule: server is the transport, and imports neither
// the access-system adapters, Redis, the wiring nor the commands.
func TestImports(t *testing.T) {
	forbidden := []string{
		"github.com/cloudkey/cloudkey/access/openpath", "github.com/cloudkey/cloudkey/access/sim",
		"github.com/cloudkey/cloudkey/cache", "github.com/redis/go-redis",
		"github.com/cloudkey/cloudkey/internal/setup", "github.com/cloudkey/cloudkey/loadtest",
		"github.com/cloudkey/cloudkey/cmd",
	}
	checkImports(t, forbidden)
}

func checkImports(t *testing.T, forbidden []string) {
	t.Helper()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		ast, err := parser.ParseFile(token.NewFileSet(), f, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range ast.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			for _, bad := range forbidden {
				if path == bad || strings.HasPrefix(path, bad+"/") {
					t.Errorf("%s imports %s", f, path)
				}
			}
		}
	}
}
