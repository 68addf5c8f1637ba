package redisconn

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// Dial returns a go-redis client for a Redis URL (see ParseURL for the
// forms). Context deadlines bound every command, so a slow Redis cannot
// hold a request past its deadline.
func Dial(rawURL string) (redis.UniversalClient, error) {
	d, err := ParseURL(rawURL)
	if err != nil {
		return nil, err
	}
	return d.client(), nil
}

// Deployment is what a Redis URL names: exactly one of Single, Sentinel
// and Cluster is set.
type Deployment struct {
	Single   *redis.Options
	Sentinel *redis.FailoverOptions
	Cluster  *redis.ClusterOptions
}

func (d Deployment) client() redis.UniversalClient {
	switch {
	case d.Sentinel != nil:
		return redis.NewFailoverClient(d.Sentinel)
	case d.Cluster != nil:
		return redis.NewClusterClient(d.Cluster)
	default:
		return redis.NewClient(d.Single)
	}
}

// dialAttempts is how many times a connection is dialled before the
// command fails. go-redis's default (5, 100 ms apart) would spend every
// request's Redis budget (cache.Config.OpTimeout) retrying a Redis that
// is down; cloudkey serves from the access system instead, and the next
// command dials again. A single server's URL may set dialer_retries.
const dialAttempts = 1

// commandRetries is how often a failed command is retried: once, so that
// a pooled connection broken by a Redis restart costs no request, but not
// go-redis's 3 times with growing backoff while Redis is down. A single
// server's URL may set max_retries.
const commandRetries = 1

// ParseURL parses a Redis URL in one of these forms (rediss... is the same
// over TLS):
//
//	redis://[user:password@]host:port[/db][?option=value...]
//	redis-sentinel://[user:password@]host:port[,host:port...][/db]?master=NAME
//	redis-cluster://[user:password@]host:port[,host:port...]
//
// A single server's options are go-redis's (redis.ParseURL). For Sentinel,
// the hosts are the sentinels, master (required) is the monitored master's
// name, the user and password are the data servers' and the optional
// sentinel_username and sentinel_password are the sentinels' own. For a
// Cluster, the hosts are seed nodes (any few; the rest are discovered)
// and there is no database number. Both also take pool_size.
func ParseURL(rawURL string) (Deployment, error) {
	scheme, rest, ok := strings.Cut(rawURL, "://")
	if !ok {
		return Deployment{}, errors.New("cache: redis URL: missing scheme (redis://, rediss://, redis-sentinel://, redis-cluster://)")
	}
	switch scheme {
	case "redis", "rediss":
		o, err := redis.ParseURL(rawURL)
		if err != nil {
			if strings.Contains(rest, "addr=") {
				err = fmt.Errorf("%w (several servers: use redis-cluster://host1:port,host2:port or redis-sentinel://...)", err)
			}
			return Deployment{}, fmt.Errorf("cache: redis URL: %w", err)
		}
		o.ContextTimeoutEnabled = true
		if o.DialerRetries == 0 {
			o.DialerRetries = dialAttempts
		}
		if o.MaxRetries == 0 {
			o.MaxRetries = commandRetries
		}
		return Deployment{Single: o}, nil
	case "redis-sentinel", "rediss-sentinel", "redis-cluster", "rediss-cluster":
	default:
		return Deployment{}, fmt.Errorf("cache: redis URL: unknown scheme %q (want redis, rediss, redis-sentinel, rediss-sentinel, redis-cluster or rediss-cluster)", scheme)
	}
	m, err := parseMulti(rest)
	if err != nil {
		return Deployment{}, fmt.Errorf("cache: redis URL: %w", err)
	}
	var tlsConfig *tls.Config
	if strings.HasPrefix(scheme, "rediss") {
		// No ServerName: crypto/tls takes each node's from its address.
		tlsConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	q := m.query
	poolSize, err := intParam(q, "pool_size")
	if err != nil {
		return Deployment{}, err
	}
	if strings.HasSuffix(scheme, "-cluster") {
		if m.db != 0 {
			return Deployment{}, fmt.Errorf("cache: redis URL: database %d: a Redis Cluster has only database 0", m.db)
		}
		if err := noOtherParams(q, "pool_size"); err != nil {
			return Deployment{}, err
		}
		return Deployment{Cluster: &redis.ClusterOptions{
			Addrs: m.hosts, Username: m.user, Password: m.password, TLSConfig: tlsConfig,
			PoolSize: poolSize, ContextTimeoutEnabled: true, DialerRetries: dialAttempts, MaxRetries: commandRetries,
		}}, nil
	}
	master := q.Get("master")
	if master == "" {
		return Deployment{}, errors.New("cache: redis URL: Sentinel needs ?master=NAME (the monitored master's name)")
	}
	if err := noOtherParams(q, "pool_size", "master", "sentinel_username", "sentinel_password"); err != nil {
		return Deployment{}, err
	}
	return Deployment{Sentinel: &redis.FailoverOptions{
		MasterName: master, SentinelAddrs: m.hosts,
		SentinelUsername: q.Get("sentinel_username"), SentinelPassword: q.Get("sentinel_password"),
		Username: m.user, Password: m.password, DB: m.db, TLSConfig: tlsConfig,
		PoolSize: poolSize, ContextTimeoutEnabled: true, DialerRetries: dialAttempts, MaxRetries: commandRetries,
	}}, nil
}

type multiURL struct {
	user, password string
	hosts          []string
	db             int
	query          url.Values
}

// parseMulti parses "[user:password@]h1:p1,h2:p2[/db][?query]", which
// net/url does not accept as one URL because of the host list.
func parseMulti(s string) (multiURL, error) {
	var m multiURL
	s, rawQuery, _ := strings.Cut(s, "?")
	authority, path, _ := strings.Cut(s, "/")
	if i := strings.LastIndex(authority, "@"); i >= 0 {
		u, err := url.Parse("x://" + authority[:i+1] + "h")
		if err != nil || u.User == nil {
			return m, errors.New("user or password is not valid (percent-encode reserved characters)")
		}
		m.user = u.User.Username()
		m.password, _ = u.User.Password()
		authority = authority[i+1:]
	}
	if authority == "" {
		return m, errors.New("no host: want host:port[,host:port...]")
	}
	for _, h := range strings.Split(authority, ",") {
		host, port, err := net.SplitHostPort(h)
		if err != nil || host == "" {
			return m, fmt.Errorf("host %q is not host:port", h)
		}
		if n, err := strconv.Atoi(port); err != nil || n <= 0 || n > 65535 {
			return m, fmt.Errorf("host %q: port %q is not a port number", h, port)
		}
		m.hosts = append(m.hosts, net.JoinHostPort(host, port))
	}
	if path != "" {
		db, err := strconv.Atoi(path)
		if err != nil || db < 0 {
			return m, fmt.Errorf("database %q is not a number", path)
		}
		m.db = db
	}
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return m, fmt.Errorf("query: %w", err)
	}
	m.query = q
	return m, nil
}

func intParam(q url.Values, name string) (int, error) {
	v := q.Get(name)
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("cache: redis URL: %s=%q is not a non-negative number", name, v)
	}
	return n, nil
}

func noOtherParams(q url.Values, known ...string) error {
	for name := range q {
		if !slices.Contains(known, name) {
			return fmt.Errorf("cache: redis URL: unknown option %q (known: %s)", name, strings.Join(known, ", "))
		}
	}
	return nil
}
