package serial

import (
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	bugserial "go.bug.st/serial"
	"go.bug.st/serial/enumerator"
)

// PortSpec names the port a terminal is on: a path ("/dev/ttyACM0",
// "COM3", "/dev/serial/by-id/...") or a USB identity. USB wins when both
// are set: COM numbers and ttyACM indexes change when a device is plugged
// into another socket or re-enumerates, its USB serial number does not.
type PortSpec struct {
	Path string `yaml:"path,omitempty" json:"path,omitempty"`
	USB  *USBID `yaml:"usb,omitempty" json:"usb,omitempty"`
	Baud int    `yaml:"baud,omitempty" json:"baud,omitempty"`
}

// USBID identifies a USB serial device. VID and PID are 4 hex digits (case
// does not matter); SerialNumber is optional but needed to tell two
// identical terminals apart.
type USBID struct {
	VID          string `yaml:"vid" json:"vid"`
	PID          string `yaml:"pid" json:"pid"`
	SerialNumber string `yaml:"serial_number,omitempty" json:"serial_number,omitempty"`
}

func (u USBID) String() string {
	s := strings.ToLower(u.VID) + ":" + strings.ToLower(u.PID)
	if u.SerialNumber != "" {
		s += " serial " + u.SerialNumber
	}
	return s
}

// String describes the spec for logs and errors.
func (s PortSpec) String() string {
	if s.USB != nil {
		return "usb " + s.USB.String()
	}
	return s.Path
}

// Validate checks the spec is usable.
func (s PortSpec) Validate() error {
	if s.USB == nil && s.Path == "" {
		return errors.New("serial port: set path or usb vid/pid")
	}
	if s.USB != nil && (!isHex4(s.USB.VID) || !isHex4(s.USB.PID)) {
		return fmt.Errorf("serial port: usb vid and pid must be 4 hex digits, got %q:%q", s.USB.VID, s.USB.PID)
	}
	if s.Baud < 0 {
		return fmt.Errorf("serial port: baud %d is negative", s.Baud)
	}
	return nil
}

func isHex4(s string) bool {
	if len(s) != 4 {
		return false
	}
	for _, c := range strings.ToLower(s) {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// PortInfo describes one port the operating system lists.
type PortInfo struct {
	Name         string `json:"name"`
	IsUSB        bool   `json:"is_usb"`
	VID          string `json:"vid,omitempty"`
	PID          string `json:"pid,omitempty"`
	SerialNumber string `json:"serial_number,omitempty"`
	Product      string `json:"product,omitempty"`
	Manufacturer string `json:"manufacturer,omitempty"`
}

// ListPorts lists the serial ports with their USB details, sorted by name.
// It backs `posbridge ports`. Pseudo-terminals are never listed.
func ListPorts() ([]PortInfo, error) {
	list, err := enumerator.GetDetailedPortsList()
	if err != nil {
		return nil, fmt.Errorf("list serial ports: %w", err)
	}
	out := make([]PortInfo, 0, len(list))
	for _, p := range list {
		out = append(out, PortInfo{
			Name: p.Name, IsUSB: p.IsUSB, VID: p.VID, PID: p.PID,
			SerialNumber: p.SerialNumber, Product: p.Product, Manufacturer: p.Manufacturer,
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Errors returned by SelectPort.
var (
	ErrPortNotFound  = errors.New("no serial port matches")
	ErrPortAmbiguous = errors.New("more than one serial port matches")
)

// SelectPort picks the port matching id from a list (as ListPorts returns
// it). VID/PID compare case-insensitively; the serial number exactly.
// Without a serial number, exactly one device with that VID/PID must be
// present; two identical terminals need their serial numbers configured.
func SelectPort(ports []PortInfo, id USBID) (string, error) {
	var match []string
	for _, p := range ports {
		if !p.IsUSB || !strings.EqualFold(p.VID, id.VID) || !strings.EqualFold(p.PID, id.PID) {
			continue
		}
		if id.SerialNumber != "" && p.SerialNumber != id.SerialNumber {
			continue
		}
		match = append(match, p.Name)
	}
	switch len(match) {
	case 1:
		return match[0], nil
	case 0:
		var seen []string
		for _, p := range ports {
			if p.IsUSB {
				seen = append(seen, fmt.Sprintf("%s=%s:%s/%s", p.Name, p.VID, p.PID, p.SerialNumber))
			}
		}
		if len(seen) == 0 {
			return "", fmt.Errorf("%w usb %s (no USB serial ports present)", ErrPortNotFound, id)
		}
		return "", fmt.Errorf("%w usb %s (present: %s)", ErrPortNotFound, id, strings.Join(seen, ", "))
	default:
		sort.Strings(match)
		return "", fmt.Errorf("%w usb %s: %s; configure serial_number", ErrPortAmbiguous, id, strings.Join(match, ", "))
	}
}

// Resolve returns the path to open for spec, asking list for the current
// ports when the spec names a USB device.
func (s PortSpec) Resolve(list func() ([]PortInfo, error)) (string, error) {
	if s.USB == nil {
		return s.Path, nil
	}
	if list == nil {
		list = ListPorts
	}
	ports, err := list()
	if err != nil {
		return "", err
	}
	return SelectPort(ports, *s.USB)
}

// OpenPort opens a serial port at baud, 8N1, with a short read timeout so
// the reader can notice a stalled frame. Modem lines are left alone (they
// fail on pseudo-terminals and some USB adapters).
func OpenPort(path string, baud int) (io.ReadWriteCloser, error) {
	if baud <= 0 {
		baud = 115200
	}
	p, err := bugserial.Open(path, &bugserial.Mode{BaudRate: baud, DataBits: 8, Parity: bugserial.NoParity, StopBits: bugserial.OneStopBit})
	if err != nil {
		return nil, fmt.Errorf("open serial port %s: %w", path, err)
	}
	if err := p.SetReadTimeout(100 * time.Millisecond); err != nil {
		p.Close()
		return nil, fmt.Errorf("serial port %s: set read timeout: %w", path, err)
	}
	return p, nil
}
