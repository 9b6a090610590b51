//go:build !linux

package proxy

import "net"

// alive cannot look at the socket here; a dead connection shows when it is used.
func alive(net.Conn) bool { return true }
