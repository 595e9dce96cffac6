// Package mqtt carries the terminal protocol over MQTT and embeds a broker
// for stores that have none.
//
// Topics, under a prefix (default "posbridge"):
//
//	{prefix}/t/{terminal_id}/down       bridge → terminal, QoS 1
//	{prefix}/t/{terminal_id}/up         terminal → bridge, QoS 1
//	{prefix}/t/{terminal_id}/presence   terminal presence, retained, QoS 1,
//	                                    "offline" set by the terminal's Last Will
//	{prefix}/bridge/{client_id}/presence  the bridge's own presence, same rules
//
// The payload of down and up is one protocol message (package protocol).
// Bridge subscribes to {prefix}/t/+/up and {prefix}/t/+/presence in its
// OnConnect handler, so every reconnect resubscribes.
//
// Delivery does not rest on the MQTT client's store or the broker's
// sessions (clean sessions are used): a publish made while disconnected is
// refused with ErrNotConnected, and the sender's own outbox (the registry
// on the bridge, the simulator on the terminal) resends every reliable
// message until the far end acknowledges it in the protocol. That is what
// survives a broker restart, which loses sessions and in-flight messages.
// paho itself also sends its unacknowledged QoS 1 publishes again after a
// reconnect (duplicates the protocol's message ids make harmless), from a
// store of encoded copies (copyStore): its memory store shared the packet
// being written with the resend, a data race inside paho.
package mqtt
