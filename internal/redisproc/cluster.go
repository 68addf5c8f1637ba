package redisproc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Cluster is a Redis Cluster of masters without replicas, each a
// redis-server on loopback, slots split evenly. It is for tests: the node
// configuration lives in a temporary directory removed by Close.
type Cluster struct {
	Nodes []*Server
	dir   string
	bus   map[*Server]int // cluster bus port of each node
}

// clusterSlots is the number of hash slots of a Redis Cluster.
const clusterSlots = 16384

// StartCluster starts n masters (n ≥ 3 is what Redis recommends; any n ≥ 1
// works), assigns them the slots, joins them and waits until every node
// reports cluster_state:ok and the same slot map (at most 20 s).
func StartCluster(ctx context.Context, n int) (_ *Cluster, err error) {
	if n < 1 {
		return nil, fmt.Errorf("redisproc: a cluster needs at least one node, got %d", n)
	}
	dir, err := os.MkdirTemp("", "redisproc-cluster-")
	if err != nil {
		return nil, fmt.Errorf("redisproc: cluster directory: %w", err)
	}
	c := &Cluster{dir: dir, bus: map[*Server]int{}}
	defer func() {
		if err != nil {
			c.Close()
		}
	}()
	for i := range n {
		var bus int
		s, err := startWith(ctx, func(port int) ([]string, error) {
			// The cluster bus gets its own free port (Redis 7's
			// cluster-port), not the default port+10000, which may be taken.
			var err error
			if bus, err = freePort(); err != nil {
				return nil, err
			}
			return []string{
				"--cluster-enabled", "yes",
				"--cluster-config-file", filepath.Join(dir, fmt.Sprintf("nodes-%d.conf", port)),
				"--cluster-port", strconv.Itoa(bus),
				"--cluster-node-timeout", "5000",
				"--dir", dir,
			}, nil
		})
		if err != nil {
			return nil, fmt.Errorf("redisproc: cluster node %d: %w", i, err)
		}
		c.Nodes = append(c.Nodes, s)
		c.bus[s] = bus
	}
	if err := c.create(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// create assigns slot ranges, makes the nodes meet and waits for the
// cluster to agree.
func (c *Cluster) create(ctx context.Context) error {
	clients := make([]*redis.Client, len(c.Nodes))
	for i, s := range c.Nodes {
		clients[i] = redis.NewClient(&redis.Options{Addr: s.Addr, MaxRetries: -1})
		defer clients[i].Close()
	}
	per := clusterSlots / len(c.Nodes)
	for i, cl := range clients {
		lo, hi := i*per, (i+1)*per-1
		if i == len(clients)-1 {
			hi = clusterSlots - 1
		}
		if err := cl.ClusterAddSlotsRange(ctx, lo, hi).Err(); err != nil {
			return fmt.Errorf("redisproc: cluster: add slots %d-%d to %s: %w", lo, hi, c.Nodes[i].Addr, err)
		}
	}
	// Every node meets every other, so nobody waits for gossip to learn
	// of a node; the bus port must be named: it is not port+10000.
	for i, cl := range clients {
		for j, s := range c.Nodes {
			if i == j {
				continue
			}
			host, port, _ := net.SplitHostPort(s.Addr)
			if err := cl.Do(ctx, "CLUSTER", "MEET", host, port, c.bus[s]).Err(); err != nil {
				return fmt.Errorf("redisproc: cluster: meet %s: %w", s.Addr, err)
			}
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		err := c.agreed(ctx, clients)
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("redisproc: cluster not ready in 20s: %w", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// agreed reports nil when every node says the cluster is ok and knows
// every master.
func (c *Cluster) agreed(ctx context.Context, clients []*redis.Client) error {
	for i, cl := range clients {
		info, err := cl.ClusterInfo(ctx).Result()
		if err != nil {
			return err
		}
		if !strings.Contains(info, "cluster_state:ok") {
			return fmt.Errorf("node %s: cluster_state is not ok", c.Nodes[i].Addr)
		}
		if !strings.Contains(info, "cluster_known_nodes:"+strconv.Itoa(len(clients))+"\r") {
			return fmt.Errorf("node %s does not know all %d nodes yet", c.Nodes[i].Addr, len(clients))
		}
		shards, err := cl.ClusterSlots(ctx).Result()
		if err != nil {
			return err
		}
		if len(shards) != len(clients) {
			return fmt.Errorf("node %s sees %d slot ranges, want %d", c.Nodes[i].Addr, len(shards), len(clients))
		}
	}
	return nil
}

// Addrs are the nodes' host:port addresses.
func (c *Cluster) Addrs() []string {
	out := make([]string, len(c.Nodes))
	for i, s := range c.Nodes {
		out[i] = s.Addr
	}
	return out
}

// URL is the cluster's redis-cluster:// URL (see redisconn.ParseURL).
func (c *Cluster) URL() string { return "redis-cluster://" + strings.Join(c.Addrs(), ",") }

// Close stops every node and removes the configuration directory. It is
// idempotent.
func (c *Cluster) Close() {
	for _, s := range c.Nodes {
		s.Close()
	}
	if c.dir != "" {
		_ = os.RemoveAll(c.dir)
		c.dir = ""
	}
}

// Flush empties every node (between tests sharing one cluster).
func (c *Cluster) Flush(ctx context.Context) error {
	var errs []error
	for _, s := range c.Nodes {
		cl := redis.NewClient(&redis.Options{Addr: s.Addr, MaxRetries: -1})
		errs = append(errs, cl.FlushAll(ctx).Err())
		cl.Close()
	}
	return errors.Join(errs...)
}
