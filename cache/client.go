package cache

import (
	"fmt"

	"github.com/redis/go-redis/v9"
)

// Dial returns a go-redis client for a redis:// or rediss:// URL. Context
// deadlines bound every command, so a slow Redis cannot hold a request
// past its deadline.
func Dial(url string) (redis.UniversalClient, error) {
	o, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("cache: redis URL: %w", err)
	}
	return redis.NewUniversalClient(&redis.UniversalOptions{
		Addrs:                 []string{o.Addr},
		DB:                    o.DB,
		Username:              o.Username,
		Password:              o.Password,
		TLSConfig:             o.TLSConfig,
		ContextTimeoutEnabled: true,
		PoolSize:              o.PoolSize,
	}), nil
}
