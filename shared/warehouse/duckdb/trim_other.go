//go:build !(linux && cgo)

package duckdb

// trimCHeap does nothing where the C library is not glibc's (malloc_trim is glibc's own).
func trimCHeap() bool { return false }
