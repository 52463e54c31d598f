package link

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// namedNetNSDir is where `ip netns add` bind-mounts named namespaces.
const namedNetNSDir = "/run/netns"

// nsGetNSType is the NS_GET_NSTYPE ioctl, _IO(0xb7, 0x3); x/sys does not
// define it.
const nsGetNSType = 0xb703

// OpenNetNS opens a network namespace given as a bare name under /run/netns
// (as made by `ip netns add`) or as an absolute path such as
// /proc/PID/ns/net. The error names spec when it does not exist or is not a
// network namespace. The caller closes the handle.
func OpenNetNS(spec string) (netns.NsHandle, error) {
	path, err := netNSPath(spec)
	if err != nil {
		return netns.None(), err
	}
	ns, err := netns.GetFromPath(path)
	if errors.Is(err, fs.ErrNotExist) {
		return netns.None(), fmt.Errorf("network namespace %q does not exist (no %s)", spec, path)
	}
	if err != nil {
		return netns.None(), fmt.Errorf("open network namespace %q: %w", spec, err)
	}
	if err := checkNetNS(int(ns)); err != nil {
		ns.Close()
		return netns.None(), fmt.Errorf("%q (%s) is not a network namespace: %w", spec, path, err)
	}
	return ns, nil
}

// NetNSExists returns nil if spec names an existing network namespace (see
// OpenNetNS) and OpenNetNS's error otherwise.
func (m *Manager) NetNSExists(spec string) error {
	ns, err := OpenNetNS(spec)
	if err != nil {
		return err
	}
	return ns.Close()
}

func netNSPath(spec string) (string, error) {
	switch {
	case spec == "":
		return "", errors.New("network namespace is empty: give a name under /run/netns or a path such as /proc/PID/ns/net")
	case strings.ContainsRune(spec, '/'):
		if !filepath.IsAbs(spec) {
			return "", fmt.Errorf("network namespace path %q must be absolute, such as /proc/PID/ns/net", spec)
		}
		return spec, nil
	case spec == "." || spec == "..":
		return "", fmt.Errorf("network namespace name %q is not valid", spec)
	}
	return filepath.Join(namedNetNSDir, spec), nil
}

// checkNetNS verifies that fd is a namespace file (nsfs) for a network
// namespace, so a stale plain file under /run/netns is caught.
func checkNetNS(fd int) error {
	var st unix.Statfs_t
	if err := unix.Fstatfs(fd, &st); err != nil {
		return err
	}
	if st.Type != unix.NSFS_MAGIC {
		return errors.New("not a namespace file (is it still mounted?)")
	}
	kind, err := unix.IoctlRetInt(fd, nsGetNSType)
	if errors.Is(err, unix.ENOTTY) || errors.Is(err, unix.EINVAL) {
		return nil // kernel older than 4.11: cannot tell the kind, accept it
	}
	if err != nil {
		return err
	}
	if kind != unix.CLONE_NEWNET {
		return errors.New("it is a namespace of another kind")
	}
	return nil
}

// inNamespace runs fn on an OS thread switched into ns, for the things that
// follow the calling thread's namespace rather than a netlink socket
// (/proc/sys/net). With netns.None() fn runs where the caller is.
func inNamespace(ns netns.NsHandle, fn func() error) error {
	if !ns.IsOpen() {
		return fn()
	}
	result := make(chan error, 1)
	go func() {
		// The thread is unlocked only once it is back in its own namespace;
		// if that fails it stays locked and the runtime discards it when
		// this goroutine exits.
		runtime.LockOSThread()
		origin, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			result <- fmt.Errorf("get current network namespace: %w", err)
			return
		}
		defer origin.Close()
		if err := netns.Set(ns); err != nil {
			runtime.UnlockOSThread()
			result <- fmt.Errorf("enter network namespace %s: %w", ns, err)
			return
		}
		fnErr := fn()
		if err := netns.Set(origin); err != nil {
			result <- errors.Join(fnErr, fmt.Errorf("return to network namespace %s: %w", origin, err))
			return
		}
		runtime.UnlockOSThread()
		result <- fnErr
	}()
	return <-result
}
