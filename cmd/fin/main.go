// Command fin is the local CLI of fin-orchestrator: it migrates the database, generates
// synthetic activity, and runs the stack on one machine.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/pprof"
	"sort"
	"strings"
	"syscall"
	"time"
)

// command is one `fin <name>` subcommand. Each lives in its own file and registers itself.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string) error
	hidden  bool // for the project's own tooling: not listed
	// godebug, when set, is a GODEBUG setting (key=value) the command re-executes itself with
	// unless GODEBUG names that key already (the runtime reads it only at start).
	godebug string
	// env is environment variables (KEY=value) the command re-executes itself with, each unless
	// the environment sets KEY already: settings read only at a process's start, such as the C
	// library's MALLOC_ARENA_MAX.
	env []string
}

var commands = map[string]command{}

func register(c command) { commands[c.name] = c }

// errUsage marks an error that is the user's call, not a failure of the system: it exits 2.
var errUsage = errors.New("usage")

func main() {
	slog.SetDefault(slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: logLevel()})))
	if len(os.Args) < 2 || os.Args[1] == "-h" || os.Args[1] == "--help" || os.Args[1] == "help" {
		usage(os.Stderr)
		os.Exit(2)
	}
	c, ok := commands[os.Args[1]]
	if !ok {
		fmt.Fprintf(os.Stderr, "fin: unknown command %q\n\n", os.Args[1])
		usage(os.Stderr)
		os.Exit(2)
	}
	reexecWith(c.godebug, c.env)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := runProfiled(ctx, c, os.Args[2:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintf(os.Stderr, "fin %s: %v\n", c.name, err)
		if errors.Is(err, errUsage) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

// runProfiled runs c, writing a CPU profile of the run to FIN_CPUPROFILE when set (go tool
// pprof), for performance work on any command. The variable is taken out of the environment,
// so a fin process this one starts does not write the same file. With FIN_CPUPROFILE_SIGNAL set
// as well, the profile covers only the time between a SIGUSR1 and the next SIGUSR2 (finbench
// snapshot --capture-cpuprofile: the snapshot, not the streaming before it).
func runProfiled(ctx context.Context, c command, args []string) error {
	path := os.Getenv("FIN_CPUPROFILE")
	if path == "" {
		return c.run(ctx, args)
	}
	os.Unsetenv("FIN_CPUPROFILE")
	if os.Getenv("FIN_CPUPROFILE_SIGNAL") != "" {
		os.Unsetenv("FIN_CPUPROFILE_SIGNAL")
		stop := profileBetweenSignals(path)
		defer stop()
		return c.run(ctx, args)
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("cpu profile: %w", err)
	}
	defer f.Close()
	if err := pprof.StartCPUProfile(f); err != nil {
		return fmt.Errorf("cpu profile: %w", err)
	}
	defer pprof.StopCPUProfile()
	return c.run(ctx, args)
}

// profileBetweenSignals writes a CPU profile to path from each SIGUSR1 to the next SIGUSR2 (a
// later window replaces an earlier one); stop ends a window still open and the listening.
func profileBetweenSignals(path string) (stop func()) {
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGUSR1, syscall.SIGUSR2)
	done, ended := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(ended)
		var f *os.File
		end := func() {
			if f != nil {
				pprof.StopCPUProfile()
				f.Close()
				f = nil
			}
		}
		defer end()
		for {
			select {
			case <-done:
				return
			case s := <-sigs:
				switch {
				case s == syscall.SIGUSR1 && f == nil:
					var err error
					if f, err = os.Create(path); err != nil {
						fmt.Fprintf(os.Stderr, "cpu profile: %v\n", err)
					} else if err := pprof.StartCPUProfile(f); err != nil {
						fmt.Fprintf(os.Stderr, "cpu profile: %v\n", err)
						f.Close()
						f = nil
					}
				case s == syscall.SIGUSR2:
					end()
				}
			}
		}
	}()
	return func() {
		signal.Stop(sigs)
		close(done)
		<-ended
	}
}

// usage lists the commands: what a user runs, nothing else (benchmarks are cmd/finbench's).
func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: fin <command> [flags]\n\ncommands:")
	names := make([]string, 0, len(commands))
	for n, c := range commands {
		if !c.hidden {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-12s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w, "\nRun 'fin <command> -h' for its flags.")
}

func logLevel() slog.Level {
	var l slog.Level
	if err := l.UnmarshalText([]byte(os.Getenv("LOG_LEVEL"))); err != nil {
		return slog.LevelInfo
	}
	return l
}

// newFlags returns a flag set for a subcommand that reports errors instead of exiting.
func newFlags(name, args string) *flag.FlagSet {
	fs := flag.NewFlagSet("fin "+name, flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: fin %s %s\n", name, args)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args into fs, a command that takes flags only: a bad flag or a stray
// argument (`fin generate once`) is a usage error, never silently ignored.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := parseArgs(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return fmt.Errorf("%w: fin %s takes no arguments, got %q (flags start with -)", errUsage, strings.TrimPrefix(fs.Name(), "fin "), fs.Args())
	}
	return nil
}

// parseArgs parses args into fs for a command that takes positional arguments too.
func parseArgs(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	return nil
}

// atLeast refuses a flag value below lowest, showing the usage: a negative duration or count
// is a mistake, not a request.
func atLeast[T int | int64 | float64 | time.Duration](fs *flag.FlagSet, name string, v, lowest T) error {
	if v >= lowest {
		return nil
	}
	fs.Usage()
	return fmt.Errorf("%w: -%s %v: must be at least %v", errUsage, name, v, lowest)
}
