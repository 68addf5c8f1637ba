// Package loginredis is the Redis adapter of kisi.LoginStore: it keeps
// each Kisi user's device login of one connection in Redis (standalone,
// Sentinel or Cluster), its secret sealed with a secrets.Keyring and bound
// to the connection and user, so the stored record is neither readable
// nor movable to another user. Rotate re-seals every stored login with
// the ring's primary key (`cloudkey secrets rotate`); List gives a
// connection's logins, without secrets, for kisi.Client.DeleteLogins.
//
// Keys: ck:v1:kisi-login:{<conn>}:<userID> (the hash tag keeps a
// connection's logins in one Cluster slot), no TTL; the value is a JSON
// record {id, user_id, created_at, secret} whose secret is sealed with
// AAD "kisi-login/<conn>/<userID>".
//
// It holds no Kisi logic, never logs and never puts a secret in an error.
// It imports access/kisi, internal/secrets and go-redis; it must not
// import server/, gen/, gRPC or internal/setup, which builds it.
package loginredis
