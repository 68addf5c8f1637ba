package cache

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cloudkey/cloudkey/internal/redistest"
)

func TestParseURL(t *testing.T) {
	type want struct {
		kind     string // single, sentinel, cluster
		addrs    []string
		user     string
		password string
		db       int
		master   string
		tls      bool
		pool     int
	}
	cases := []struct {
		url  string
		want want
		err  string // substring of the error; empty: no error
	}{
		{url: "redis://127.0.0.1:6380/2", want: want{kind: "single", addrs: []string{"127.0.0.1:6380"}, db: 2}},
		{url: "redis://u:p%40ss@cache:6379", want: want{kind: "single", addrs: []string{"cache:6379"}, user: "u", password: "p@ss"}},
		{url: "rediss://cache:6380/0?pool_size=20", want: want{kind: "single", addrs: []string{"cache:6380"}, tls: true, pool: 20}},
		{url: "redis-sentinel://s1:26379,s2:26379,s3:26379/1?master=mymaster",
			want: want{kind: "sentinel", addrs: []string{"s1:26379", "s2:26379", "s3:26379"}, db: 1, master: "mymaster"}},
		{url: "rediss-sentinel://:secret@s1:26379?master=m&sentinel_password=x&pool_size=5",
			want: want{kind: "sentinel", addrs: []string{"s1:26379"}, password: "secret", master: "m", tls: true, pool: 5}},
		{url: "redis-cluster://n1:7000,n2:7001,[::1]:7002",
			want: want{kind: "cluster", addrs: []string{"n1:7000", "n2:7001", "[::1]:7002"}}},
		{url: "rediss-cluster://default:pw@n1:7000", want: want{kind: "cluster", addrs: []string{"n1:7000"}, user: "default", password: "pw", tls: true}},
		{url: "redis-cluster://n1:7000/0", want: want{kind: "cluster", addrs: []string{"n1:7000"}}},

		{url: "localhost:6379", err: "missing scheme"},
		{url: "http://localhost:6379", err: `unknown scheme "http"`},
		{url: "redis://h:6379/x", err: "invalid database number"},
		{url: "redis://h:6379?addr=h:6380", err: "use redis-cluster://"},
		{url: "redis://h:6379?bogus=1", err: "bogus"},
		{url: "redis://h:6379?max_retries=x", err: "max_retries"},
		{url: "redis-sentinel://s1:26379", err: "needs ?master=NAME"},
		{url: "redis-sentinel://s1:26379?master=m&db=2", err: `unknown option "db"`},
		{url: "redis-sentinel://s1?master=m", err: `host "s1" is not host:port`},
		{url: "redis-sentinel://s1:0?master=m", err: `port "0" is not a port number`},
		{url: "redis-cluster://", err: "no host"},
		{url: "redis-cluster://n1:7000,,n2:7001", err: `host "" is not host:port`},
		{url: "redis-cluster://n1:7000/3", err: "database 3: a Redis Cluster has only database 0"},
		{url: "redis-cluster://n1:7000/x", err: `database "x" is not a number`},
		{url: "redis-cluster://n1:7000?pool_size=-1", err: `pool_size="-1"`},
		{url: "redis-cluster://n1:7000?master=m", err: `unknown option "master"`},
		{url: "redis-cluster://n1:7000?a=%zz", err: "query"},
	}
	for _, c := range cases {
		t.Run(c.url, func(t *testing.T) {
			d, err := ParseURL(c.url)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("err = %v, want one containing %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got want
			switch {
			case d.Single != nil:
				o := d.Single
				got = want{kind: "single", addrs: []string{o.Addr}, user: o.Username, password: o.Password, db: o.DB, tls: o.TLSConfig != nil, pool: o.PoolSize}
				if o.MaxRetries != 1 || o.DialerRetries != 1 {
					t.Errorf("retries: command %d, dial %d; want 1, 1 (fail fast while Redis is down)", o.MaxRetries, o.DialerRetries)
				}
				if !o.ContextTimeoutEnabled {
					t.Error("context timeouts are off")
				}
			case d.Sentinel != nil:
				o := d.Sentinel
				got = want{kind: "sentinel", addrs: o.SentinelAddrs, user: o.Username, password: o.Password, db: o.DB, master: o.MasterName, tls: o.TLSConfig != nil, pool: o.PoolSize}
				if !o.ContextTimeoutEnabled {
					t.Error("context timeouts are off")
				}
			case d.Cluster != nil:
				o := d.Cluster
				got = want{kind: "cluster", addrs: o.Addrs, user: o.Username, password: o.Password, tls: o.TLSConfig != nil, pool: o.PoolSize}
				if o.MaxRetries != 1 || o.DialerRetries != 1 {
					t.Errorf("retries: command %d, dial %d; want 1, 1", o.MaxRetries, o.DialerRetries)
				}
				if !o.ContextTimeoutEnabled {
					t.Error("context timeouts are off")
				}
			}
			if got.kind != c.want.kind || !slices.Equal(got.addrs, c.want.addrs) || got.user != c.want.user || got.password != c.want.password ||
				got.db != c.want.db || got.master != c.want.master || got.tls != c.want.tls || got.pool != c.want.pool {
				t.Errorf("parsed %+v, want %+v", got, c.want)
			}
		})
	}
}

func TestParseURLSentinelPassword(t *testing.T) {
	d, err := ParseURL("redis-sentinel://s1:26379?master=m&sentinel_username=su&sentinel_password=sp")
	if err != nil {
		t.Fatal(err)
	}
	if d.Sentinel.SentinelUsername != "su" || d.Sentinel.SentinelPassword != "sp" {
		t.Errorf("sentinel credentials = %q, %q", d.Sentinel.SentinelUsername, d.Sentinel.SentinelPassword)
	}
}

// A Sentinel URL reaches the master the sentinel names, and the cache
// works through it.
func TestDialSentinel(t *testing.T) {
	master := redistest.Start(t)
	sentinel := redistest.StartSentinel(t, master, "mymaster")
	rdb, err := Dial("redis-sentinel://" + sentinel.Addr + "/0?master=mymaster")
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s := New(rdb, Config{LocalTTL: -1})
	if _, err := s.resolveAccount(ctx, "alice@example.com", func(context.Context) (Account, error) { return alice, nil }); err != nil {
		t.Fatal(err)
	}
	if snap, err := s.peek(ctx, "alice@example.com"); err != nil || !snap.HasAccount {
		t.Fatalf("Get through Sentinel = %+v, %v", snap, err)
	}
	if n := master.Client().Exists(ctx, s.accountKey("alice@example.com")).Val(); n != 1 {
		t.Error("the account is not on the master the sentinel monitors")
	}
	// A master name the sentinel does not monitor fails on use.
	other, err := Dial("redis-sentinel://" + sentinel.Addr + "/0?master=nosuch")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if err := other.Ping(ctx).Err(); err == nil {
		t.Error("PING through a master name nobody monitors succeeded")
	}
}
