package e2e

import (
	"bytes"
	"fmt"
	"os/exec"
	"runtime"
	"strings"

	"github.com/vishvananda/netns"
)

// inNS runs fn on a thread that has entered the named network namespace.
// Sockets fn creates belong to that namespace for good, whichever goroutine
// uses them later: that is how the echo servers and probes live "inside" a
// container without a helper process.
func inNS(name string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		origin, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("current namespace: %w", err)
			return
		}
		defer origin.Close()
		target, err := netns.GetFromName(name)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("open namespace %s: %w", name, err)
			return
		}
		defer target.Close()
		if err := netns.Set(target); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("enter namespace %s: %w", name, err)
			return
		}
		err = fn()
		// Go back before unlocking. Ending the goroutine locked would end
		// the thread too, except the main thread, which the runtime parks
		// instead: it would keep the namespace (and its veths) alive. If
		// the way back fails, stay locked: the thread then dies with us.
		if netns.Set(origin) == nil {
			runtime.UnlockOSThread()
		}
		errc <- err
	}()
	return <-errc
}

// cmdResult is a finished command.
type cmdResult struct {
	args           []string
	stdout, stderr string
	code           int // exit status; -1 if it could not run
	err            error
}

func (r cmdResult) String() string {
	return fmt.Sprintf("%s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(r.args, " "), r.code, r.stdout, r.stderr)
}

// run runs a command and returns its output and status; it never fails the
// test itself.
func run(args ...string) cmdResult {
	cmd := exec.Command(args[0], args[1:]...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	res := cmdResult{args: args, stdout: stdout.String(), stderr: stderr.String(), err: err}
	switch e := err.(type) {
	case nil:
	case *exec.ExitError:
		res.code = e.ExitCode()
	default:
		res.code = -1
	}
	return res
}

// nsExec is `ip netns exec NS args...`.
func nsExec(ns string, args ...string) cmdResult {
	return run(append([]string{"ip", "netns", "exec", ns}, args...)...)
}

// ipIn is `ip -n NS args...`.
func ipIn(ns string, args ...string) cmdResult {
	return run(append([]string{"ip", "-n", ns}, args...)...)
}
