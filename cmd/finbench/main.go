// Command finbench runs the benchmarks that need more than `go test -bench`: a running stack, a
// second process or a real reference tool beside the code measured. scripts/bench.d builds and
// runs it (make bench); it is not part of what a user runs, so it lives apart from fin.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

// benchmark is one `finbench <name>`.
type benchmark struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string) error
}

var benchmarks = []benchmark{
	{"capture", "the Go capture beside pg_recvlogical and Debezium (needs bin/fin)", runCaptureBench},
	{"cut", "gold as a consistent cut under paced transfers: balances equal postings after every build", runBenchCut},
	{"freshness", "commit-to-RAW and commit-to-gold freshness of a running stack under paced postings", runBenchFreshness},
	{"loader", "the warehouse loader beside DuckDB's own read_parquet load", runBenchLoader},
	{"publish", "a build's publication for history reads beside the same marts published whole", runBenchPublish},
	{"snapshot-freshness", "commit-to-RAW freshness of a running stack during an online snapshot, beside streaming only", runBenchSnapshotFreshness},
	{"snapshot", "online incremental snapshots beside COPY TO STDOUT, and the capture's peak RSS (needs bin/fin)", runSnapshotBench},
}

// errUsage marks a wrong invocation: it exits 2.
var errUsage = errors.New("usage")

func main() {
	var l slog.Level
	if l.UnmarshalText([]byte(os.Getenv("LOG_LEVEL"))) != nil {
		l = slog.LevelInfo
	}
	slog.SetDefault(slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: l})))
	if len(os.Args) < 2 {
		usage()
		os.Exit(2)
	}
	for _, b := range benchmarks {
		if b.name != os.Args[1] {
			continue
		}
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		err := b.run(ctx, os.Args[2:])
		stop()
		switch {
		case err == nil, errors.Is(err, flag.ErrHelp):
			os.Exit(0)
		case errors.Is(err, errUsage):
			fmt.Fprintf(os.Stderr, "finbench %s: %v\n", b.name, err)
			os.Exit(2)
		default:
			fmt.Fprintf(os.Stderr, "finbench %s: %v\n", b.name, err)
			os.Exit(1)
		}
	}
	usage()
	os.Exit(2)
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: finbench <benchmark> [flags]   (scripts/bench.d runs each; make bench runs all)\n\nbenchmarks:")
	for _, b := range benchmarks {
		fmt.Fprintf(os.Stderr, "  %-10s %s\n", b.name, b.summary)
	}
}

// newFlags returns a benchmark's flag set; parse it with parseFlags.
func newFlags(name string) *flag.FlagSet {
	return flag.NewFlagSet("finbench "+name, flag.ContinueOnError)
}

// parseFlags parses args into fs, marking bad flags as usage errors.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil && !errors.Is(err, flag.ErrHelp) {
		return fmt.Errorf("%w: %v", errUsage, err)
	} else if err != nil {
		return err
	}
	return nil
}
