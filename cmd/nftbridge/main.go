// Command nftbridge manages Docker-style bridge networks whose firewall is one
// private nftables table programmed over netlink.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// command is one CLI verb.
type command struct {
	name  string
	usage string // one line: arguments
	help  string // what it does
	run   func(app *app, args []string) error
	subs  []*command
}

// app carries what every command needs: streams, logger, global options.
type app struct {
	stdout, stderr io.Writer
	log            *slog.Logger
	stateDir       string
	debug          bool
	ctx            context.Context
}

func main() {
	a := &app{stdout: os.Stdout, stderr: os.Stderr, ctx: context.Background()}
	os.Exit(a.main(os.Args[1:]))
}

// main parses global flags, dispatches, and turns errors into exit codes:
// 1 for failures, 2 for usage errors.
func (a *app) main(args []string) int {
	args, err := a.globalFlags(args)
	level := slog.LevelInfo
	if a.debug {
		level = slog.LevelDebug
	}
	a.log = slog.New(slog.NewTextHandler(a.stderr, &slog.HandlerOptions{Level: level}))
	if err == nil {
		err = dispatch(a, rootCommand(), args, "nftbridge")
	}
	switch {
	case err == nil:
		return 0
	case errors.Is(err, errHelp):
		return 0
	}
	fmt.Fprintf(a.stderr, "nftbridge: %v\n", err)
	var usage *usageError
	if errors.As(err, &usage) {
		return 2
	}
	return 1
}

// globalFlags takes --state-dir and --debug from the front of args.
func (a *app) globalFlags(args []string) ([]string, error) {
	a.stateDir = os.Getenv("NFTBRIDGE_STATE_DIR")
	for len(args) > 0 && strings.HasPrefix(args[0], "-") {
		name, value, hasValue := strings.Cut(strings.TrimLeft(args[0], "-"), "=")
		switch name {
		case "debug":
			a.debug = true
			args = args[1:]
		case "state-dir":
			if !hasValue {
				if len(args) < 2 {
					return nil, usagef("--state-dir needs a directory")
				}
				value, args = args[1], args[1:]
			}
			a.stateDir = value
			args = args[1:]
		case "h", "help":
			return []string{"help"}, nil
		default:
			return args, nil
		}
	}
	return args, nil
}

func rootCommand() *command {
	return &command{name: "nftbridge", subs: []*command{
		networkCommand(), endpointCommand(), portCommand(),
		{name: "ruleset", usage: "", help: "Print the ruleset nftbridge programs, in nft syntax.", run: runRuleset},
		{name: "restore", usage: "", help: "Rebuild bridges, veths and the whole ruleset from the store (after a reboot or `nft flush ruleset`); the user chain's rules are kept where they still exist.", run: runRestore},
		{name: "daemon", usage: "[--socket PATH]", help: "Serve Docker's remote network-driver plugin API.", run: runDaemon},
		{name: "version", usage: "", help: "Print the version.", run: runVersion},
	}}
}

var errHelp = errors.New("help requested")

// usageError is a mistake in the command line: exit status 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// dispatch finds the sub-command named by args[0] and runs it.
func dispatch(a *app, cmd *command, args []string, path string) error {
	if cmd.run != nil {
		return cmd.run(a, args)
	}
	if len(args) == 0 || args[0] == "help" || args[0] == "--help" || args[0] == "-h" {
		printCommands(a.stdout, cmd, path)
		if len(args) == 0 {
			return usagef("%s: a command is required", path)
		}
		return errHelp
	}
	for _, sub := range cmd.subs {
		if sub.name == args[0] || (sub.name == "rm" && args[0] == "remove") || (sub.name == "ls" && args[0] == "list") {
			return dispatch(a, sub, args[1:], path+" "+sub.name)
		}
	}
	printCommands(a.stderr, cmd, path)
	return usagef("unknown command %q for %s", args[0], path)
}

func printCommands(w io.Writer, cmd *command, path string) {
	fmt.Fprintf(w, "Usage: %s [--state-dir DIR] [--debug] COMMAND\n\nCommands:\n", path)
	for _, sub := range cmd.subs {
		help := sub.help
		if help == "" && len(sub.subs) > 0 {
			help = "Manage " + sub.name + "s."
		}
		fmt.Fprintf(w, "  %-10s %s\n", sub.name, help)
	}
	fmt.Fprintf(w, "\nRun '%s COMMAND --help' for more.\n", path)
}

func runVersion(a *app, args []string) error {
	fs := newFlags("nftbridge version", "", "Print the version.", a)
	if _, err := fs.parse(args, 0, 0); err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "nftbridge %s\n", version)
	return nil
}
