// Package protocol defines the posbridge terminal protocol: the versioned JSON
// messages a bridge and a card terminal exchange, whatever carries them.
//
// The same Message travels over both transports: inside one serial frame
// (package serial adds framing, CRC, ACK/NAK and retransmits) or as the
// payload of one MQTT publish (package mqtt maps terminals to topics). The
// human description a terminal app developer implements from is
// docs/terminal-protocol.md; this package is the reference implementation
// and the two must agree.
//
// Every message carries a sender-chosen ID. A receiver acts on an ID once
// and answers a resent copy with the same acknowledgement again, so a sender
// may resend freely until it hears an ack: that is how a lost frame, a lost
// MQTT publish or a bridge restart never loses a payment result and never
// shows an invoice twice.
package protocol
