// Package terminal is posbridge's link to the card terminals: the registry
// of which terminals exist, which are connected and busy, and the Hub that
// pushes invoices to them and hears their payment results, over serial/USB
// (package serial) or MQTT (package mqtt), with the same protocol (package
// protocol, described for terminal developers in docs/terminal-protocol.md).
//
// # Using it
//
//	hub, err := terminal.New(terminal.Config{
//		Terminals: []terminal.TerminalConfig{
//			{ID: "T-1", Serial: &serial.PortSpec{USB: &serial.USBID{VID: "2fb8", PID: "2101", SerialNumber: "1850012345"}}},
//			{ID: "T-2", MQTT: true},
//		},
//		MQTT:    &mqtt.Config{BrokerURL: broker.URL(), ClientID: "posbridge-store-7"},
//		OnEvent: func(ctx context.Context, ev pos.TerminalEvent) error { ... },
//	})
//	err = hub.Open(ctx)            // never waits for a terminal or a broker
//	err = hub.PushInvoice(ctx, "T-1", terminal.InvoicePush{...})
//	defer hub.Close(ctx)            // bounded; every goroutine stopped
//
// # Events
//
// Events go to Config.OnEvent, called from one dispatcher goroutine, in
// the order the hub learned them. Links never wait for the subscriber:
// they append to an unbounded in-memory queue, so a slow subscriber delays
// events, never frames or acknowledgements of other messages. A payment
// result is acknowledged to the terminal only after OnEvent returned nil
// for it; if OnEvent returns an error (or the bridge dies first) the
// terminal keeps resending the result and it is delivered again. So a
// result is delivered at least once; copies of the same message (same
// message id) arriving while it is queued or after it was handled are
// suppressed. A terminal app that sends the same result under a new id
// (after its own restart) produces a second event: match results by
// transaction id and treat a repeat as a no-op.
//
// # Delivery to the terminal
//
// Invoice and cancel are "reliable" protocol messages (as are the
// terminal's hello and result): the hub's own outbox (never the MQTT
// client's store) resends them until the terminal acknowledges them (an
// invoice also ends with its transaction's result) or their deadline
// passes, at once after every reconnect and every Config.ResendInterval
// while connected, in the order they were made (a terminal refuses an
// invoice as busy while the payment whose cancel was made before it is
// still on screen). The terminal acts on a message id once.
package terminal
