package main

import (
	"context"
	"fmt"
	"text/tabwriter"

	"github.com/posbridge/posbridge/internal/terminal/serial"
)

func runPorts(ctx context.Context, e env, args []string) int {
	fs := newFlags(e, "ports", "ports [--json]")
	asJSON := fs.Bool("json", false, "print JSON")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	ports, err := serial.ListPorts()
	if err != nil {
		return fail(e, "ports: %v", err)
	}
	if *asJSON {
		if ports == nil {
			ports = []serial.PortInfo{}
		}
		printJSON(e, ports)
		return exitOK
	}
	if len(ports) == 0 {
		fmt.Fprintln(e.stderr, "no serial ports found (is the terminal plugged in? on Linux see dmesg for ttyACM/ttyUSB)")
		return exitOK
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PORT\tUSB\tVID:PID\tSERIAL NUMBER\tPRODUCT\tMANUFACTURER")
	for _, p := range ports {
		usb, ids := "no", "-"
		if p.IsUSB {
			usb, ids = "yes", p.VID+":"+p.PID
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", p.Name, usb, ids, p.SerialNumber, p.Product, p.Manufacturer)
	}
	_ = tw.Flush()
	fmt.Fprintln(e.stderr, "\nPin a terminal by USB identity in the config (survives COM renumbering and ttyACM0→ttyACM1):\n  serial: {usb: {vid: \"XXXX\", pid: \"XXXX\", serial: \"...\"}}")
	return exitOK
}
