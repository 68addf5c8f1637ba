package tenant

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

func fixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The fixtures are bytes on purpose; an editor or a Git setting that
// rewrites them would make the BOM and CRLF cases test nothing.
func TestFixturesAreRaw(t *testing.T) {
	b := fixture(t, "bom_crlf.csv")
	if !bytes.HasPrefix(b, []byte("\xEF\xBB\xBFName,")) || bytes.Count(b, []byte("\r\n")) != 5 {
		t.Fatalf("testdata/bom_crlf.csv lost its BOM or CRLFs: %q", b)
	}
	if b := fixture(t, "cr_only.csv"); bytes.Contains(b, []byte("\n")) {
		t.Fatalf("testdata/cr_only.csv has LFs: %q", b)
	}
}
