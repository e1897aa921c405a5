package reconcile

// HistoryLen is how many earlier snapshots r holds, for tests of its memory bound.
func HistoryLen(r *Reconciler) int { return len(r.history) }
