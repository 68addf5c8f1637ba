package server

import (
	"testing"

	pb "github.com/cloudkey/cloudkey/gen/cloudkey/v1"
	"github.com/cloudkey/cloudkey/unlock"
)

// An encoded answer is served only for the version of the view it was
// built from; an older answer never replaces a newer one; version 0 is
// never kept; the memory kept is bounded; a warm get allocates nothing.
func TestEncodedAnswers(t *testing.T) {
	v := func(n uint64) unlock.ListingVersion { return unlock.ListingVersion{n} }
	const budget = 64 << 10
	a := newEncodedAnswers(budget)
	m1, _ := newEncodedMessage(&pb.ListEntriesResponse{})
	m2, _ := newEncodedMessage(&pb.ListEntriesResponse{Entries: []*pb.Entry{{Id: "101"}}})
	if a.get("alice@example.com", v(1)) != nil {
		t.Fatal("an empty store answered")
	}
	a.put("alice@example.com", v(1), m1)
	if a.get("alice@example.com", v(1)) != m1 || a.get("alice@example.com", v(2)) != nil {
		t.Fatal("the answer is not served for its version alone")
	}
	a.put("alice@example.com", v(3), m2)
	a.put("alice@example.com", v(2), m1) // a late, older answer
	if a.get("alice@example.com", v(3)) != m2 {
		t.Fatal("an older answer replaced a newer one")
	}
	a.put("bob@example.com", v(0), m1)
	if a.get("bob@example.com", v(0)) != nil {
		t.Fatal("version 0 was kept")
	}
	if n := testing.AllocsPerRun(100, func() { a.get("alice@example.com", v(3)) }); n != 0 {
		t.Errorf("a warm get allocates %v times, want 0", n)
	}
	for i := range 1000 {
		a.put(string(rune('a'+i%26))+string(rune(i))+"@example.com", v(uint64(i+10)), m1)
	}
	if n, b := a.m.Stats(); b > budget || n == 0 || n >= 1000 {
		t.Errorf("%d answers kept in %d bytes, budget %d", n, b, budget)
	}
	var none *encodedAnswers
	none.put("alice@example.com", v(1), m1)
	if none.get("alice@example.com", v(1)) != nil {
		t.Error("a nil store answered")
	}
}

// Over several connections a listing is newer only when no connection's
// view in it is older: an answer built from a mix of an older and a newer
// view never blocks one built from newer views of both.
func TestEncodedAnswersSeveralConnections(t *testing.T) {
	a := newEncodedAnswers(1 << 20)
	m1, _ := newEncodedMessage(&pb.ListEntriesResponse{})
	m2, _ := newEncodedMessage(&pb.ListEntriesResponse{Entries: []*pb.Entry{{Id: "101"}}})
	a.put("frank@example.com", unlock.ListingVersion{5, 9}, m1)
	if a.get("frank@example.com", unlock.ListingVersion{5, 9}) != m1 || a.get("frank@example.com", unlock.ListingVersion{5, 10}) != nil {
		t.Fatal("an answer is not served for its versions alone")
	}
	a.put("frank@example.com", unlock.ListingVersion{7, 9}, m2)
	a.put("frank@example.com", unlock.ListingVersion{5, 9}, m1) // late, older
	if a.get("frank@example.com", unlock.ListingVersion{7, 9}) != m2 {
		t.Fatal("an older answer replaced a newer one")
	}
	a.put("frank@example.com", unlock.ListingVersion{6, 12}, m1) // mixed: kept, it is the latest read
	if a.get("frank@example.com", unlock.ListingVersion{6, 12}) != m1 {
		t.Fatal("a mixed answer was not kept")
	}
}
