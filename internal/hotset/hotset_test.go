package hotset

import (
	"fmt"
	"sync"
	"testing"
)

func TestPutGetEvict(t *testing.T) {
	const budget = Shards * 100 // 100 bytes a shard
	tests := []struct {
		name string
		run  func(t *testing.T, m *Map[int])
	}{
		{"get what was put", func(t *testing.T, m *Map[int]) {
			if !m.Put("a", 1, 10, nil) {
				t.Fatal("not stored")
			}
			if v, ok := m.Get("a"); !ok || v != 1 {
				t.Fatalf("Get = %d, %v", v, ok)
			}
			if _, ok := m.Get("b"); ok {
				t.Fatal("Get(b) found a value")
			}
		}},
		{"replace keeps one entry", func(t *testing.T, m *Map[int]) {
			m.Put("a", 1, 10, nil)
			m.Put("a", 2, 30, nil)
			if v, _ := m.Get("a"); v != 2 {
				t.Fatalf("Get = %d, want 2", v)
			}
			if n, b := m.Stats(); n != 1 || b != 30 {
				t.Fatalf("Stats = %d, %d; want 1, 30", n, b)
			}
		}},
		{"too large is not stored", func(t *testing.T, m *Map[int]) {
			if m.Put("a", 1, 101, nil) {
				t.Fatal("stored a value over a shard's budget")
			}
			if _, ok := m.Get("a"); ok {
				t.Fatal("found")
			}
		}},
		{"keep refuses", func(t *testing.T, m *Map[int]) {
			m.Put("a", 5, 10, nil)
			newer := func(old int, had bool) bool { return !had || old < 3 }
			if m.Put("a", 3, 10, newer) {
				t.Fatal("stored over a newer value")
			}
			if v, _ := m.Get("a"); v != 5 {
				t.Fatalf("Get = %d, want 5", v)
			}
			if !m.Put("b", 3, 10, newer) {
				t.Fatal("refused a new key")
			}
		}},
		{"delete and clear", func(t *testing.T, m *Map[int]) {
			m.Put("a", 1, 10, nil)
			m.Put("b", 2, 10, nil)
			m.Delete("a")
			if _, ok := m.Get("a"); ok {
				t.Fatal("a after Delete")
			}
			if n, b := m.Stats(); n != 1 || b != 10 {
				t.Fatalf("Stats = %d, %d; want 1, 10", n, b)
			}
			m.Clear()
			if n, b := m.Stats(); n != 0 || b != 0 {
				t.Fatalf("after Clear: Stats = %d, %d", n, b)
			}
			m.Put("c", 3, 10, nil)
			if v, ok := m.Get("c"); !ok || v != 3 {
				t.Fatal("Put after Clear")
			}
		}},
		{"delete if", func(t *testing.T, m *Map[int]) {
			for i := range 200 { // over every shard
				m.Put(fmt.Sprintf("a|%d", i), i, 1, nil)
				m.Put(fmt.Sprintf("b|%d", i), i, 2, nil)
			}
			if n := m.DeleteIf(func(k string) bool { return k[0] == 'a' }); n != 200 {
				t.Fatalf("DeleteIf dropped %d, want 200", n)
			}
			if n, b := m.Stats(); n != 200 || b != 400 {
				t.Fatalf("Stats = %d, %d; want 200, 400", n, b)
			}
			if _, ok := m.Get("a|7"); ok {
				t.Fatal("a|7 after DeleteIf")
			}
			if v, ok := m.Get("b|7"); !ok || v != 7 {
				t.Fatal("b|7 dropped")
			}
			// The freed slots are reused.
			m.Put("a|7", 7, 1, nil)
			if v, ok := m.Get("a|7"); !ok || v != 7 {
				t.Fatal("Put after DeleteIf")
			}
		}},
		{"the budget holds", func(t *testing.T, m *Map[int]) {
			for i := range 10_000 {
				m.Put(fmt.Sprint(i), i, 10, nil)
			}
			n, b := m.Stats()
			if b > budget || n > budget/10 || n < budget/20 {
				t.Fatalf("Stats = %d entries, %d bytes; budget %d", n, b, budget)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.run(t, New[int](budget)) })
	}
}

// What is read again survives a stream of keys read once (second chance).
func TestHotStays(t *testing.T) {
	m := New[int](Shards * 1000) // 100 entries of 10 bytes a shard
	hot := make([]string, 0, 1000)
	for i := range 1000 { // about 16 a shard
		k := fmt.Sprintf("hot%d", i)
		hot = append(hot, k)
		m.Put(k, i, 10, nil)
	}
	for i := range 100_000 {
		if i%50 == 0 {
			for _, k := range hot {
				m.Get(k)
			}
		}
		m.Put(fmt.Sprintf("cold%d", i), i, 10, nil)
	}
	kept := 0
	for _, k := range hot {
		if _, ok := m.Get(k); ok {
			kept++
		}
	}
	if kept < 990 {
		t.Errorf("%d of 1000 hot keys kept", kept)
	}
}

func TestConcurrent(t *testing.T) {
	m := New[int](Shards * 200)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 5000 {
				k := fmt.Sprint((i * (g + 1)) % 3000)
				switch i % 7 {
				case 0:
					m.Delete(k)
				case 1, 2:
					m.Put(k, i, int64(i%30+1), nil)
				default:
					m.Get(k)
				}
			}
		})
	}
	wg.Wait()
	if _, b := m.Stats(); b > m.Budget() {
		t.Fatalf("%d bytes over a budget of %d", b, m.Budget())
	}
}

func BenchmarkGetHit(b *testing.B) {
	m := New[[4]uint64](1 << 20)
	m.Put("alice@example.com", [4]uint64{1}, 100, nil)
	b.ReportAllocs()
	b.RunParallel(func(p *testing.PB) {
		for p.Next() {
			if _, ok := m.Get("alice@example.com"); !ok {
				b.Fatal("miss")
			}
		}
	})
}
