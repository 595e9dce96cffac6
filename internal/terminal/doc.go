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
// Events go to Config.OnEvent. Each configured terminal has its own
// dispatcher goroutine and queue: its events reach OnEvent one at a time,
// in the order the hub learned them, while other terminals' events are
// handled at the same time. So OnEvent must be safe for concurrent use
// (by different terminals), and a handler that is slow for one terminal
// (a result waiting to be stored) delays only that terminal's later
// events. Links never wait for the subscriber: they append to the
// terminal's queue, so a slow subscriber delays events, never frames or
// acknowledgements of other messages. Close ends the context passed to
// OnEvent (right after closing the MQTT client, which takes at most a
// few seconds), so it does not wait out a slow handler, and forgets the
// events not yet handled.
//
// A terminal's queue holds at most 256 events; it fills only when OnEvent
// is stuck on that terminal's events or the terminal floods the bridge.
// While it is full, that terminal's new events are not queued: a result
// is left unacknowledged (the terminal sends it again), other events are
// dropped, logged and counted in Status.DroppedEvents.
//
// A payment result is acknowledged to the terminal only after OnEvent
// returned nil for it; if OnEvent returns an error (or the result could
// not be queued, or the bridge dies first) the terminal keeps resending
// the result and it is delivered again. So a result is delivered at least
// once; copies of the same message (same message id) arriving while it
// is queued or after it was handled are suppressed. A terminal app that
// sends the same result under a new id (after its own restart) produces a
// second event: match results by transaction id and treat a repeat as a
// no-op.
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
