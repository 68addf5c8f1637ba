package visitor_test

import (
	"github.com/redis/go-redis/v9"

	"github.com/cloudkey/cloudkey/visitor"
	"github.com/cloudkey/cloudkey/visitor/visitorredis"
)

// The internal tests run the service on the Redis adapter.
func init() {
	visitor.SetRedisStore(func(rdb redis.UniversalClient) visitor.Store { return visitorredis.New(rdb, "") })
}
