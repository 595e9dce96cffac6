// Package serial carries the terminal protocol over a serial line (RS-232,
// USB CDC-ACM, a USB-serial adapter).
//
// Framing (see frame.go and docs/terminal-protocol.md): STX, type, seq,
// 16-bit length, payload, CRC-32. Every data frame is answered with an ACK
// (or a NAK when its CRC fails); the sender resends on NAK or timeout, a
// bounded number of times. A receiver that sees the same seq and CRC twice
// in a row acknowledges again but delivers once, so a lost ACK never makes
// a message act twice. The decoder resynchronises on the next STX after
// garbage, a bad CRC or a frame whose sender stopped mid-way.
//
// Conn is that link layer over one open port; it is the same at both ends.
// Link keeps a port open across unplug/replug: it resolves a path or a USB
// VID/PID/serial number (via go.bug.st/serial/enumerator, so COM and ttyACM
// renumbering do not matter), waits before reopening and backs off while
// the device stays away.
package serial
