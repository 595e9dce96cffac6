package terminal

// MaxQueuedEvents is the bound of one terminal's event queue.
const MaxQueuedEvents = maxQueuedEvents
