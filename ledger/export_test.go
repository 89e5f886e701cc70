package ledger

// SetBatchLimits changes the group-commit bounds of l (tests only).
func (l *Ledger) SetBatchLimits(maxBatch, maxInFlight int) {
	l.batch.mu.Lock()
	defer l.batch.mu.Unlock()
	l.batch.maxBatch, l.batch.maxInFlight = maxBatch, maxInFlight
}

// BatchState reports how many postings wait in the queue and how many
// batches are running (tests only).
func (l *Ledger) BatchState() (queued, inFlight int) {
	l.batch.mu.Lock()
	defer l.batch.mu.Unlock()
	return len(l.batch.queue), l.batch.inFlight
}
