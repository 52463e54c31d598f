package bench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Sandbox owns every namespace and background process the benchmark
// creates, so that Close removes all of them — on success, on error and on
// an interrupt. Names carry the benchmark's PID: nbb<pid>-<role>.
type Sandbox struct {
	prefix string
	self   string // this executable, re-executed in namespaces for roles

	mu    sync.Mutex
	names []string
	procs []*Proc
}

// NewSandbox removes namespaces left by benchmark runs that died, and
// returns an empty sandbox.
func NewSandbox() (*Sandbox, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	removeStaleNamespaces()
	return &Sandbox{prefix: fmt.Sprintf("nbb%d-", os.Getpid()), self: self}, nil
}

var staleName = regexp.MustCompile(`^nbb(\d+)-`)

// removeStaleNamespaces deletes nbb<pid>-* namespaces whose benchmark
// process no longer exists.
func removeStaleNamespaces() {
	entries, _ := os.ReadDir("/run/netns")
	for _, e := range entries {
		m := staleName.FindStringSubmatch(e.Name())
		if m == nil {
			continue
		}
		pid, _ := strconv.Atoi(m[1])
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err == nil {
			continue
		}
		_ = exec.Command("ip", "netns", "del", e.Name()).Run()
	}
}

// NewNS creates namespace nbb<pid>-<role> with its loopback up.
func (s *Sandbox) NewNS(role string) (string, error) {
	name := s.prefix + role
	_ = exec.Command("ip", "netns", "del", name).Run()
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		return "", fmt.Errorf("ip netns add %s: %v: %s", name, err, bytes.TrimSpace(out))
	}
	s.mu.Lock()
	s.names = append(s.names, name)
	s.mu.Unlock()
	if _, err := Sh(name, "ip", "link", "set", "lo", "up"); err != nil {
		return "", err
	}
	return name, nil
}

// DelNS kills the sandbox's processes in a namespace and deletes it.
func (s *Sandbox) DelNS(name string) {
	s.mu.Lock()
	var keep []*Proc
	for _, p := range s.procs {
		if p.ns == name {
			p.Kill()
		} else {
			keep = append(keep, p)
		}
	}
	s.procs = keep
	for i, n := range s.names {
		if n == name {
			s.names = append(s.names[:i], s.names[i+1:]...)
			break
		}
	}
	s.mu.Unlock()
	_ = exec.Command("ip", "netns", "del", name).Run()
}

// Close kills every background process and deletes every namespace.
func (s *Sandbox) Close() {
	s.mu.Lock()
	procs, names := s.procs, s.names
	s.procs, s.names = nil, nil
	s.mu.Unlock()
	for _, p := range procs {
		p.Kill()
	}
	for _, n := range names {
		_ = exec.Command("ip", "netns", "del", n).Run()
	}
}

// Sh runs argv inside namespace ns ("" = here) and returns its stdout; an
// error carries stderr.
func Sh(ns string, argv ...string) ([]byte, error) {
	return ShInput(ns, nil, argv...)
}

// ShInput is Sh with stdin.
func ShInput(ns string, stdin io.Reader, argv ...string) ([]byte, error) {
	cmd := nsCommand(ns, argv...)
	cmd.Stdin = stdin
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("%s: %v: %s", strings.Join(nsArgv(ns, argv...), " "), err, lastLines(stderr.String(), 8))
	}
	return out, nil
}

func nsArgv(ns string, argv ...string) []string {
	if ns == "" {
		return argv
	}
	return append([]string{"ip", "netns", "exec", ns}, argv...)
}

func nsCommand(ns string, argv ...string) *exec.Cmd {
	full := nsArgv(ns, argv...)
	cmd := exec.Command(full[0], full[1:]...)
	// Die with the benchmark: nothing of ours outlives an interrupted run.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	return cmd
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// RoleCommand is the command that runs this executable as role inside ns.
func (s *Sandbox) RoleCommand(ns, role string, args ...string) *exec.Cmd {
	cmd := nsCommand(ns, append([]string{s.self}, args...)...)
	cmd.Env = append(os.Environ(), roleEnv+"="+role)
	return cmd
}

// RunRole runs a role to completion inside ns and returns its stdout.
func (s *Sandbox) RunRole(ns, role string, args ...string) ([]byte, error) {
	cmd := s.RoleCommand(ns, role, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("role %s in %s: %v: %s", role, ns, err, lastLines(stderr.String(), 8))
	}
	return out, nil
}

// Proc is a background role process. It prints "ready" on its first line
// of stdout when it is serving; the rest of its stdout is its result.
type Proc struct {
	ns     string
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stdout *bufio.Reader
	stderr bytes.Buffer
}

// StartRole starts a background role and waits for its "ready" line.
func (s *Sandbox) StartRole(ctx context.Context, ns, role string, args ...string) (*Proc, error) {
	p := &Proc{ns: ns, cmd: s.RoleCommand(ns, role, args...)}
	var err error
	if p.stdin, err = p.cmd.StdinPipe(); err != nil {
		return nil, err
	}
	out, err := p.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	p.stdout = bufio.NewReader(out)
	p.cmd.Stderr = &p.stderr
	if err := p.cmd.Start(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.procs = append(s.procs, p)
	s.mu.Unlock()
	ready := make(chan error, 1)
	go func() {
		line, err := p.stdout.ReadString('\n')
		if err == nil && strings.TrimSpace(line) != "ready" {
			err = fmt.Errorf("unexpected first line %q", line)
		}
		ready <- err
	}()
	select {
	case err = <-ready:
	case <-time.After(10 * time.Second):
		err = fmt.Errorf("not ready after 10s")
	case <-ctx.Done():
		err = ctx.Err()
	}
	if err != nil {
		p.Kill()
		return nil, fmt.Errorf("role %s in %s: %v: %s", role, ns, err, lastLines(p.stderr.String(), 8))
	}
	return p, nil
}

// Finish closes the role's stdin (its signal to stop) and returns the rest
// of its stdout.
func (p *Proc) Finish(timeout time.Duration) ([]byte, error) {
	_ = p.stdin.Close()
	type result struct {
		out []byte
		err error
	}
	res := make(chan result, 1)
	go func() {
		out, err := io.ReadAll(p.stdout)
		if werr := p.cmd.Wait(); err == nil {
			err = werr
		}
		res <- result{out, err}
	}()
	select {
	case r := <-res:
		if r.err != nil {
			return r.out, fmt.Errorf("%v: %s", r.err, lastLines(p.stderr.String(), 8))
		}
		return r.out, nil
	case <-time.After(timeout):
		p.Kill()
		return nil, fmt.Errorf("role did not finish within %s", timeout)
	}
}

// Call sends one line to a serving role (see serveLines) and returns the
// line it answers.
func (p *Proc) Call(line []byte) ([]byte, error) {
	if _, err := p.stdin.Write(append(line, '\n')); err != nil {
		return nil, fmt.Errorf("role in %s: %v: %s", p.ns, err, lastLines(p.stderr.String(), 8))
	}
	out, err := p.stdout.ReadBytes('\n')
	if err != nil {
		return nil, fmt.Errorf("role in %s: no answer to %q: %v: %s", p.ns, line, err, lastLines(p.stderr.String(), 8))
	}
	return out, nil
}

// Kill ends the process (the role and, through Pdeathsig, nothing else).
func (p *Proc) Kill() {
	if p.cmd.Process != nil && p.cmd.ProcessState == nil {
		_ = p.cmd.Process.Kill()
	}
}
