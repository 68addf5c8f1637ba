package kisi

import (
	"context"
	"time"
)

// Login is a device login cloudkey created at Kisi on a user's behalf with
// the organisation key (POST /logins): the Kisi counterpart of Openpath's
// cloud key. Its Secret is a credential: it is kept only encrypted at rest
// (LoginStore), never logged and never returned by any API.
type Login struct {
	ID        int64 // Kisi's login id, for DELETE /logins/{id}
	UserID    int64 // the Kisi user it belongs to
	Secret    string
	CreatedAt time.Time
}

// LoginStore keeps one login per Kisi user for one connection, encrypted
// at rest, shared by every replica. Implementations: loginredis.
type LoginStore interface {
	// Get returns userID's login; ok is false when none is stored.
	Get(ctx context.Context, userID int64) (l Login, ok bool, err error)
	// Put stores l as l.UserID's login, replacing any other.
	Put(ctx context.Context, l Login) error
	// Delete forgets userID's login (Kisi no longer accepts it).
	Delete(ctx context.Context, userID int64) error
	// List returns every login stored for the connection, in no
	// particular order, with Secret left empty: deleting a login at Kisi
	// needs only its id. A stored record it cannot read is reported in
	// the error, naming its key, while the readable logins are still
	// returned.
	List(ctx context.Context) ([]Login, error)
}
