// Package layout holds no code: its test (layout_test.go) checks the
// repository's layout rules of issue 12 on the import graph (`go list`)
// and on the tracked files (`git ls-files`):
//
//   - Domain packages (unlock, visitor, tenant, access and every package
//     under them) import no storage or transport: not go-redis
//     (github.com/redis/go-redis/..., github.com/go-redis/...),
//     miniredis, gRPC (google.golang.org/grpc...) nor the generated API
//     (github.com/cloudkey/cloudkey/gen/...). Non-test files only.
//     Adapters are the exception, recognised by name: a package under a
//     domain whose last path element ends in "redis" (unlock/auditredis,
//     visitor/visitorredis, tenant/tenantredis) is a Redis adapter and
//     may import Redis.
//   - loadtest (and any package under it), non-test files, depends
//     neither directly nor transitively on internal/setup or server:
//     the harness is a client of the public API, and its in-process
//     target comes from internal/selftarget through Config.StartTarget.
//   - The top level holds at most 14 tracked folders (first path
//     elements of `git ls-files` that are directories; dot-folders such
//     as .ci are tooling and not counted).
//
// layout imports nothing of cloudkey and nothing may import it.
package layout
