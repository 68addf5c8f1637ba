package visitor

import "github.com/redis/go-redis/v9"

// SetRedisStore lets redisstore_test.go (package visitor_test, which may
// import visitorredis) hand the internal tests the Redis adapter.
func SetRedisStore(f func(redis.UniversalClient) Store) { newRedisStore = f }
