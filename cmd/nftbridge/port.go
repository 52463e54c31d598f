package main

import (
	"fmt"

	"github.com/nftbridge/nftbridge/ports"
)

func portCommand() *command {
	return &command{name: "port", help: "Publish container ports on the host.", subs: []*command{
		{name: "publish", help: "Publish ports of an endpoint.", run: runPortPublish},
		{name: "unpublish", help: "Stop publishing ports of an endpoint.", run: runPortUnpublish},
		{name: "ls", help: "List published ports.", run: runPortLs},
	}}
}

const specHelp = "SPEC is Docker's -p form: [hostip:][hostport:]containerport[/tcp|udp], ports may be ranges (8000-8002:80-82)."

func parseSpecs(raw []string) ([]ports.Spec, error) {
	if len(raw) == 0 {
		return nil, usagef("at least one -p SPEC is required")
	}
	specs := make([]ports.Spec, 0, len(raw))
	for _, r := range raw {
		spec, err := ports.ParseSpec(r)
		if err != nil {
			return nil, usagef("%v", err)
		}
		specs = append(specs, spec)
	}
	return specs, nil
}

func runPortPublish(a *app, args []string) error {
	f := newFlags("nftbridge port publish", "ENDPOINT -p SPEC [-p SPEC...]", "Publish ports of an endpoint. "+specHelp, a)
	var raw listFlag
	f.Var(&raw, "p", "port spec (repeatable)")
	f.Var(&raw, "publish", "same as -p")
	pos, err := f.parse(args, 1, 1)
	if err != nil {
		return err
	}
	specs, err := parseSpecs(raw)
	if err != nil {
		return err
	}
	eng, err := a.engine()
	if err != nil {
		return err
	}
	bindings, err := eng.Publish(pos[0], specs)
	if err != nil {
		return err
	}
	for _, b := range bindings {
		a.log.Info("port published", "endpoint", pos[0], "binding", b.String())
		fmt.Fprintln(a.stdout, b)
	}
	return nil
}

func runPortUnpublish(a *app, args []string) error {
	f := newFlags("nftbridge port unpublish", "ENDPOINT -p SPEC [-p SPEC...]",
		"Stop publishing the endpoint's ports that SPEC selects (container port and protocol; host address and port when given). "+specHelp, a)
	var raw listFlag
	f.Var(&raw, "p", "port spec (repeatable)")
	pos, err := f.parse(args, 1, 1)
	if err != nil {
		return err
	}
	specs, err := parseSpecs(raw)
	if err != nil {
		return err
	}
	eng, err := a.engine()
	if err != nil {
		return err
	}
	removed, err := eng.Unpublish(pos[0], specs)
	if err != nil {
		return err
	}
	for _, b := range removed {
		a.log.Info("port unpublished", "endpoint", pos[0], "binding", b.String())
	}
	return nil
}

// portRow is one line of `port ls`.
type portRow struct {
	Endpoint, Network string
	Binding           string
	Container         string
}

func runPortLs(a *app, args []string) error {
	f := newFlags("nftbridge port ls", "[--format table|json]", "List published ports.", a)
	format := formatFlag(f)
	if _, err := f.parse(args, 0, 0); err != nil {
		return err
	}
	if err := checkFormat(*format); err != nil {
		return err
	}
	eng, err := a.engine()
	if err != nil {
		return err
	}
	published, err := eng.Ports()
	if err != nil {
		return err
	}
	rows := make([]portRow, 0, len(published))
	for _, p := range published {
		rows = append(rows, portRow{Endpoint: p.Endpoint, Network: p.Network, Binding: p.Binding.String(),
			Container: fmt.Sprintf("%s:%d/%s", p.Addr, p.Binding.ContainerPort, p.Binding.Proto)})
	}
	if *format == "json" {
		return writeJSON(a.stdout, rows)
	}
	tw := newTable(a.stdout)
	fmt.Fprintln(tw, "ENDPOINT\tNETWORK\tPUBLISHED\tCONTAINER")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.Endpoint, r.Network, r.Binding, r.Container)
	}
	return tw.Flush()
}
