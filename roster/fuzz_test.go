package roster

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParseCSV checks that no input makes the parser panic, and that what
// it returns holds together: every person has a valid canonical email and
// a line below the header, every key is unique.
func FuzzParseCSV(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.csv"))
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b))
	}
	f.Add("unit,email\n\"1,a@b.example\n")
	f.Add("Resident,Email\n(t1),x@y.example\nVACANT\nTotal")
	f.Fuzz(func(t *testing.T, in string) {
		im, err := ParseCSV(strings.NewReader(in), CSVOptions{MaxRows: 1000})
		if err != nil {
			return
		}
		seen := map[string]bool{}
		for _, p := range im.People {
			if p.CanonicalEmail == "" || p.Line <= im.HeaderLine {
				t.Fatalf("person %+v (header line %d)", p, im.HeaderLine)
			}
			if seen[p.Key()] {
				t.Fatalf("key %s twice", p.Key())
			}
			seen[p.Key()] = true
		}
	})
}
