//go:build !linux

package server

import (
	"net"
	"time"
)

// withUserTimeout: TCP_USER_TIMEOUT is Linux's; elsewhere the keepalive
// pings alone close a dead peer's connection.
func withUserTimeout(l net.Listener, _ time.Duration) net.Listener { return l }
