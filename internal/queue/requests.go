package queue

// Buckets of the request outbox: customers, installment batches and payees
// waiting for (or delivered to) their gateway. See docs/requests.md.
var (
	bReq     = []byte("req")     // id → request record
	bReqIdem = []byte("reqidem") // kind 0x00 idempotency key → id
	bReqDue  = []byte("reqdue")  // next-attempt time, id → nil (queued only)
	bReqOpen = []byte("reqopen") // id → nil (submitting: outcome unknown after a crash)
	bReqDone = []byte("reqdone") // finished-at, id → nil (final)

	requestBuckets = [][]byte{bReq, bReqIdem, bReqDue, bReqOpen, bReqDone}
)
