//go:build linux && cgo

package duckdb

/*
#include <malloc.h>
*/
import "C"

// trimCHeap hands the free pages of glibc's malloc arenas back to the OS (malloc_trim(0): every
// arena, not only the top of the main one) and says whether it gave any. DuckDB allocates its
// buffers through its own jemalloc but every other C++ object (catalog entries, plans, a reopened
// instance's functions, parquet readers' state) through glibc, whose arenas keep the pages their
// peaks freed: in `fin up --rate 200` they held 47 MB for 11 MB in use at minute 5, growing by
// about 2 MB a minute, and one malloc_trim took them from 40 to 17 MB resident
// (docs/benchmarks.md). DuckDB trims too, but only on its own worker threads and after large
// frees of theirs, which the stack's small queries and loads never reach.
func trimCHeap() bool { return C.malloc_trim(0) == 1 }
