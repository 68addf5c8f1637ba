package visitorredis

import (
	"context"
	"time"
)

// The tile's correlation tags (visitor.TagStore) are kept under
// tag:{tag}: a tile registration's contact details, written before its
// Envoy invite is created, read when invite_created names the tag.

// PutTag implements visitor.TagStore.
func (s *Store) PutTag(ctx context.Context, tag string, data []byte, ttl time.Duration) error {
	return s.rdb.Set(ctx, s.key("tag", tag), data, ttl).Err()
}

// Tag implements visitor.TagStore.
func (s *Store) Tag(ctx context.Context, tag string) ([]byte, bool, error) {
	return get(ctx, s.rdb, s.key("tag", tag))
}

// DeleteTag implements visitor.TagStore.
func (s *Store) DeleteTag(ctx context.Context, tag string) error {
	return s.rdb.Del(ctx, s.key("tag", tag)).Err()
}
