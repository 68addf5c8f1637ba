// Package visitorredis is visitor.Store in Redis. Its key names are those
// the visitor service has always written (see Store), so data written by
// earlier releases is read as it is.
package visitorredis
