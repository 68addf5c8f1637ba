// Package tenantredis is the Redis adapter of package tenant: it
// implements tenant's store interfaces (tenant.BuildingStore,
// tenant.ContactStore) on go-redis, under the key names the current
// release writes. It holds no tenant logic (validation, CSV, ordering stay
// in tenant) and must not import server/, gen/ or grpc; internal/setup
// builds it and hands it to tenant.
package tenantredis
