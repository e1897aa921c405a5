package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/fin-orchestrator/fin-orchestrator/shared/kafka"
	"github.com/fin-orchestrator/fin-orchestrator/shared/statedir"
)

func init() {
	register(command{name: "kafka-tail", summary: "print the change events of a topic as they arrive (key, value)", run: runKafkaTail})
}

// runKafkaTail follows a topic of the running stack's broker (or KAFKA_BROKERS) and prints each
// record's key and value on one line, tombstones as "<tombstone>".
func runKafkaTail(ctx context.Context, args []string) error {
	fs := newFlags("kafka-tail", "[--from-beginning] <topic>")
	fromStart := fs.Bool("from-beginning", false, "print the topic from its first record, not only new ones")
	if err := parseArgs(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("%w: name one topic, such as fin.public.accounts", errUsage)
	}
	brokers := kafka.BrokersFromEnv()
	if len(brokers) == 0 {
		addr, err := os.ReadFile(filepath.Join(statedir.Dir(), "kafka.addr"))
		if err != nil {
			return fmt.Errorf("no KAFKA_BROKERS and no running stack (start it with `make run`): %w", err)
		}
		brokers = strings.Split(strings.TrimSpace(string(addr)), ",")
	}
	start := kgo.NewOffset().AtEnd()
	if *fromStart {
		start = kgo.NewOffset().AtStart()
	}
	cl, err := kafka.NewClient(brokers, kgo.ConsumeTopics(fs.Arg(0)), kgo.ConsumeResetOffset(start))
	if err != nil {
		return err
	}
	defer cl.Close()
	for {
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err := fetches.Err(); err != nil && !errors.Is(err, context.Canceled) {
			return fmt.Errorf("read %s from %s: %w", fs.Arg(0), strings.Join(brokers, ","), err)
		}
		fetches.EachRecord(func(r *kgo.Record) {
			value := string(r.Value)
			if r.Value == nil {
				value = "<tombstone>"
			}
			fmt.Printf("%s\t%s\n", r.Key, value)
		})
	}
}
