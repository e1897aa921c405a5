package capture

// SetChunkReadHook sets chunkReadHook for a test and returns what restores it.
func SetChunkReadHook(f func(table string, after []string)) (restore func()) {
	old := chunkReadHook
	chunkReadHook = f
	return func() { chunkReadHook = old }
}
