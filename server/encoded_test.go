package server

import (
	"testing"

	pb "github.com/cloudkey/cloudkey/gen/cloudkey/v1"
)

// An encoded answer is served only for the version of the view it was
// built from; an older answer never replaces a newer one; version 0 is
// never kept; the number kept is bounded; a warm get allocates nothing.
func TestEncodedAnswers(t *testing.T) {
	a := newEncodedAnswers(encodedShards) // one per shard
	m1, _ := newEncodedMessage(&pb.ListEntriesResponse{})
	m2, _ := newEncodedMessage(&pb.ListEntriesResponse{Entries: []*pb.Entry{{Id: "101"}}})
	if a.get("alice@example.com", 1) != nil {
		t.Fatal("an empty store answered")
	}
	a.put("alice@example.com", 1, m1)
	if a.get("alice@example.com", 1) != m1 || a.get("alice@example.com", 2) != nil {
		t.Fatal("the answer is not served for its version alone")
	}
	a.put("alice@example.com", 3, m2)
	a.put("alice@example.com", 2, m1) // a late, older answer
	if a.get("alice@example.com", 3) != m2 {
		t.Fatal("an older answer replaced a newer one")
	}
	a.put("bob@example.com", 0, m1)
	if a.get("bob@example.com", 0) != nil {
		t.Fatal("version 0 was kept")
	}
	if n := testing.AllocsPerRun(100, func() { a.get("alice@example.com", 3) }); n != 0 {
		t.Errorf("a warm get allocates %v times, want 0", n)
	}
	for i := range 1000 {
		a.put(string(rune('a'+i%26))+string(rune(i))+"@example.com", uint64(i+10), m1)
	}
	n := 0
	for i := range a.shards {
		n += len(a.shards[i].m)
	}
	if n > encodedShards {
		t.Errorf("%d answers kept, bound %d", n, encodedShards)
	}
	var none *encodedAnswers
	none.put("alice@example.com", 1, m1)
	if none.get("alice@example.com", 1) != nil {
		t.Error("a nil store answered")
	}
}
