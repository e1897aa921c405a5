package main

import (
	"log/slog"
	"os"
	"slices"
	"strings"
	"syscall"
)

// sysmonAwake is the GODEBUG setting `fin api` runs with: a scheduler trace every 24.8 days (the
// longest period: at most one line on stderr in that time). Its purpose is a side effect: with a trace
// period set, the runtime's monitor thread (sysmon) never goes into its deep sleep. Without it,
// whenever the API's one Go thread waits for the network sysmon sleeps deeply, the next system
// call wakes it (a futex wake and a thread switch), and the wake resets its polling period to
// 20 us, so under load it wakes tens of thousands of times a second: ~15% of the API's CPU
// under the GET benchmark (perf), 0.46 nanosleeps, 0.22 futex calls and 0.5 context switches per
// GET, all but gone with the setting (docs/api.md, Performance). The price: an idle process's
// sysmon wakes every 10 ms instead of sleeping.
const sysmonAwake = "schedtrace=2147483647"

// withGODEBUG returns env with setting (key=value) added to GODEBUG, and whether it changed:
// a GODEBUG that already names the key is the user's choice and stays as it is.
func withGODEBUG(env []string, setting string) ([]string, bool) {
	key, _, _ := strings.Cut(setting, "=")
	out := make([]string, 0, len(env)+1)
	current := ""
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "GODEBUG="); ok {
			current = v
			continue
		}
		out = append(out, kv)
	}
	for _, s := range strings.Split(current, ",") {
		if k, _, _ := strings.Cut(strings.TrimSpace(s), "="); k == key {
			return env, false
		}
	}
	if current != "" {
		setting = current + "," + setting
	}
	return append(out, "GODEBUG="+setting), true
}

// withEnv returns env with each of settings (KEY=value) added whose KEY env does not set, and
// whether it changed: a variable already set is the user's choice.
func withEnv(env, settings []string) ([]string, bool) {
	changed := false
	for _, setting := range settings {
		key, _, _ := strings.Cut(setting, "=")
		if !slices.ContainsFunc(env, func(kv string) bool { return strings.HasPrefix(kv, key+"=") }) {
			env, changed = append(env, setting), true
		}
	}
	return env, changed
}

// reexecWith replaces this process with itself, same arguments, with godebug (key=value, unless
// empty) added to GODEBUG and the variables of env set (what the Go runtime and the C library
// read only at start), unless the environment names them all already. It returns only when it
// did not replace the process; failing to is not fatal: the command runs as it is.
func reexecWith(godebug string, env []string) {
	environ, changed := withEnv(os.Environ(), env)
	if godebug != "" {
		var g bool
		environ, g = withGODEBUG(environ, godebug)
		changed = changed || g
	}
	if !changed {
		return
	}
	exe, err := os.Executable()
	if err == nil {
		err = syscall.Exec(exe, os.Args, environ)
	}
	slog.Warn("running without the start settings", "godebug", godebug, "env", env, "err", err)
}
