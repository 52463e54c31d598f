package link

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Sysctls nftbridge needs, as paths under /proc/sys.
const (
	sysctlIPForward        = "net/ipv4/ip_forward"
	sysctlBridgeNFIptables = "net/bridge/bridge-nf-call-iptables"
)

// sysctlFile maps "net/ipv4/ip_forward" to its /proc/sys file, refusing
// anything that could leave /proc/sys.
func sysctlFile(path string) (string, error) {
	if path == "" || filepath.IsAbs(path) || filepath.Clean(path) != path || strings.HasPrefix(path, "..") {
		return "", fmt.Errorf("sysctl %q: want a relative path such as net/ipv4/ip_forward", path)
	}
	return filepath.Join("/proc/sys", path), nil
}

// GetSysctl reads a sysctl in the Manager's namespace; path is like
// "net/ipv4/ip_forward". Surrounding white space is trimmed.
func (m *Manager) GetSysctl(path string) (string, error) {
	file, err := sysctlFile(path)
	if err != nil {
		return "", err
	}
	var value []byte
	err = inNamespace(m.ns, func() error {
		value, err = os.ReadFile(file)
		return err
	})
	if err != nil {
		return "", fmt.Errorf("read sysctl %s: %w", path, err)
	}
	return string(bytes.TrimSpace(value)), nil
}

// SetSysctl sets a sysctl in the Manager's namespace and reports whether it
// changed; path is like "net/ipv4/ip_forward". An equal value is not
// rewritten.
func (m *Manager) SetSysctl(path, value string) (changed bool, err error) {
	file, err := sysctlFile(path)
	if err != nil {
		return false, err
	}
	err = inNamespace(m.ns, func() error {
		current, err := os.ReadFile(file)
		if err != nil {
			return err
		}
		if string(bytes.TrimSpace(current)) == value {
			return nil
		}
		changed = true
		return os.WriteFile(file, []byte(value), 0o644)
	})
	if err != nil {
		return false, fmt.Errorf("set sysctl %s=%s: %w", path, value, err)
	}
	return changed, nil
}

// EnsureForwarding turns on net.ipv4.ip_forward in the Manager's namespace
// and reports whether it was off.
func (m *Manager) EnsureForwarding() (changed bool, err error) {
	return m.SetSysctl(sysctlIPForward, "1")
}

// EnableRouteLocalnet sets net.ipv4.conf.<bridge>.route_localnet=1, which
// lets a port published on 127.0.0.1 be DNATed into the bridge: without it
// the kernel drops packets from 127/8 that are routed off the host.
func (m *Manager) EnableRouteLocalnet(bridge string) error {
	if err := checkIfName("bridge", bridge); err != nil {
		return err
	}
	_, err := m.SetSysctl("net/ipv4/conf/"+bridge+"/route_localnet", "1")
	return err
}

// ensureBrNetfilterLoaded makes sure the br_netfilter module is there (its
// sysctl directory exists), running `modprobe br_netfilter` if not. It
// never touches net.bridge.bridge-nf-call-iptables: that switch is the
// host's; nftbridge turns bridge netfilter on per bridge.
func (m *Manager) ensureBrNetfilterLoaded() error {
	exists, err := m.sysctlExists(sysctlBridgeNFIptables)
	if err != nil || exists {
		return err
	}
	// Loading a module is not per namespace, so this runs as is.
	modprobeOut := loadBrNetfilter()
	if exists, err = m.sysctlExists(sysctlBridgeNFIptables); err != nil {
		return err
	}
	if !exists {
		return fmt.Errorf("br_netfilter is not loaded (no sysctl %s) and modprobe br_netfilter did not load it: %s",
			sysctlBridgeNFIptables, modprobeOut)
	}
	return nil
}

func (m *Manager) sysctlExists(path string) (bool, error) {
	_, err := m.GetSysctl(path)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	}
	return false, err
}

// loadBrNetfilter runs modprobe and describes the outcome for an error
// message; a missing modprobe is not an error in itself.
func loadBrNetfilter() string {
	modprobe, err := exec.LookPath("modprobe")
	if err != nil {
		return "modprobe not found"
	}
	out, err := exec.Command(modprobe, "br_netfilter").CombinedOutput()
	if err != nil {
		return fmt.Sprintf("%v: %s", err, bytes.TrimSpace(out))
	}
	return "modprobe succeeded"
}

// SetSysctl sets a sysctl in the host (caller's) namespace and reports
// whether it changed; path is like "net/ipv4/ip_forward".
func SetSysctl(path, value string) (changed bool, err error) {
	return New().SetSysctl(path, value)
}

// GetSysctl reads a sysctl in the host (caller's) namespace.
func GetSysctl(path string) (string, error) {
	return New().GetSysctl(path)
}

// EnsureForwarding turns on net.ipv4.ip_forward in the host namespace and
// reports whether it was off.
func EnsureForwarding() (changed bool, err error) {
	return New().EnsureForwarding()
}

// EnableRouteLocalnet sets net.ipv4.conf.<bridge>.route_localnet=1 in the
// host namespace.
func EnableRouteLocalnet(bridge string) error {
	return New().EnableRouteLocalnet(bridge)
}
