package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"text/tabwriter"
)

// flags wraps flag.FlagSet with Docker's habits: flags and arguments may be
// interleaved, --help prints usage and exits 0, and mistakes are usage errors.
type flags struct {
	*flag.FlagSet
	app   *app
	usage string
	help  string
}

func newFlags(name, usage, help string, a *app) *flags {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return &flags{FlagSet: fs, app: a, usage: usage, help: help}
}

// parse parses args, allowing flags after positional arguments, and checks
// the number of positional arguments (max < 0: no limit).
func (f *flags) parse(args []string, minArgs, maxArgs int) ([]string, error) {
	var positional []string
	for {
		if err := f.FlagSet.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				f.printUsage(f.app.stdout)
				return nil, errHelp
			}
			f.printUsage(f.app.stderr)
			return nil, usagef("%s: %v", f.Name(), err)
		}
		if f.NArg() == 0 {
			break
		}
		positional = append(positional, f.Arg(0))
		args = f.Args()[1:]
	}
	if len(positional) < minArgs || (maxArgs >= 0 && len(positional) > maxArgs) {
		f.printUsage(f.app.stderr)
		return nil, usagef("%s: wrong number of arguments (got %d): usage: %s %s", f.Name(), len(positional), f.Name(), f.usage)
	}
	return positional, nil
}

func (f *flags) printUsage(w io.Writer) {
	fmt.Fprintf(w, "Usage: %s %s\n\n%s\n", f.Name(), f.usage, f.help)
	hasFlags := false
	f.VisitAll(func(*flag.Flag) { hasFlags = true })
	if hasFlags {
		fmt.Fprintf(w, "\nOptions:\n")
		f.VisitAll(func(fl *flag.Flag) {
			name, usage := flag.UnquoteUsage(fl)
			def := ""
			if fl.DefValue != "" && fl.DefValue != "[]" {
				def = fmt.Sprintf(" (default %s)", fl.DefValue)
			}
			fmt.Fprintf(w, "  --%s %s\n\t%s%s\n", fl.Name, name, usage, def)
		})
	}
}

// listFlag collects a repeatable flag such as -p.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

// prefixFlag parses a CIDR, naming the bad value.
type prefixFlag struct{ p netip.Prefix }

func (p *prefixFlag) String() string {
	if p.p.IsValid() {
		return p.p.String()
	}
	return ""
}
func (p *prefixFlag) Set(v string) error {
	prefix, err := netip.ParsePrefix(v)
	if err != nil {
		return fmt.Errorf("invalid CIDR %q: want an IPv4 prefix such as 172.30.0.0/16", v)
	}
	p.p = prefix
	return nil
}

// addrFlag parses an IP address, naming the bad value.
type addrFlag struct{ a netip.Addr }

func (a *addrFlag) String() string {
	if a.a.IsValid() {
		return a.a.String()
	}
	return ""
}
func (a *addrFlag) Set(v string) error {
	addr, err := netip.ParseAddr(v)
	if err != nil {
		return fmt.Errorf("invalid IP address %q: want an IPv4 address such as 172.30.0.1", v)
	}
	a.a = addr
	return nil
}

// formatFlag is --format: "table" (default) or "json".
func formatFlag(f *flags) *string {
	return f.String("format", "table", "output format: table or json")
}

func checkFormat(format string) error {
	if format != "table" && format != "json" {
		return usagef("invalid --format %q: want table or json", format)
	}
	return nil
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func newTable(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
}
