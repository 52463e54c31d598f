package e2e

import (
	"archive/tar"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nftbridge/nftbridge/e2e/echo"
)

// The Docker test's fixed names. dockerd finds plugins by socket file name
// in /run/docker/plugins, the daemon's default --socket: the test uses the
// real path, so it exercises what an installation does.
const (
	dockerPluginDir  = "/run/docker/plugins"
	dockerPluginSock = dockerPluginDir + "/nftbridge.sock"
	dockerImage      = "nftbridge-e2e-echo:latest"
)

// dockerWorld is a world whose host namespace runs the nftbridge daemon and
// a dockerd of its own (own data root, exec root and API socket, no
// iptables, no default bridge). Both are started with nsenter, which moves
// them into the namespace without `ip netns exec`'s private /sys (dockerd
// needs the real cgroup tree).
type dockerWorld struct {
	*world
	dir      string // data root, exec root, logs, image: removed at the end
	docker   string // the docker CLI
	dockerd  *dockerProc
	daemon   *dockerProc
	madeDirs []string // /run/docker dirs this test created, innermost first
	// tablesBefore is `nft list tables` before nftbridge started.
	tablesBefore string
}

// dockerProc is a long-running process the test started.
type dockerProc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{} // closed when it has exited
}

// dockerPrerequisites installs what is missing (Debian's docker.io is
// dockerd 20.10) and returns the docker CLI to use. The package's own
// service is never started: a policy-rc.d denies it during the install.
func dockerPrerequisites(t *testing.T) string {
	t.Helper()
	if os.Getenv("NFTBRIDGE_VM") != "" {
		t.Skip("the Docker test runs on the CI host, not in the nft-only VM (which has no dockerd)")
	}
	requirePrivileges(t)
	// Each command the test needs, with the Debian package that has it.
	tools := [][2]string{{"dockerd", "docker.io"}, {"iptables-save", "iptables"}, {"nsenter", "util-linux"}}
	var missing []string
	for _, tool := range tools {
		if _, err := exec.LookPath(tool[0]); err != nil {
			missing = append(missing, tool[1])
		}
	}
	if len(missing) > 0 {
		if err := aptInstall(missing); err != nil {
			skipOrFail(t, fmt.Sprintf("needs %s and could not install it: %v", strings.Join(missing, ", "), err))
		}
	}
	// Debian's client matches its dockerd; any other on PATH is a fallback.
	for _, cli := range []string{"/usr/bin/docker", "docker"} {
		if path, err := exec.LookPath(cli); err == nil {
			return path
		}
	}
	skipOrFail(t, "no docker CLI on PATH")
	return ""
}

func aptInstall(pkgs []string) error {
	if _, err := exec.LookPath("apt-get"); err != nil {
		return errors.New("apt-get not found")
	}
	const policy = "/usr/sbin/policy-rc.d"
	if _, err := os.Stat(policy); errors.Is(err, os.ErrNotExist) {
		if err := os.WriteFile(policy, []byte("#!/bin/sh\nexit 101\n"), 0o755); err != nil {
			return err
		}
		defer os.Remove(policy)
	}
	env := append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	for _, args := range [][]string{{"update", "-qq"}, append([]string{"install", "-y", "-qq", "--no-install-recommends"}, pkgs...)} {
		cmd := exec.Command("apt-get", args...)
		cmd.Env = env
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("apt-get %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	return nil
}

// newDockerWorld builds the world, starts the nftbridge daemon and dockerd
// in its host namespace and imports the echo image. Everything is stopped
// and removed when t ends, after a dump if t failed.
func newDockerWorld(t *testing.T) *dockerWorld {
	t.Helper()
	docker := dockerPrerequisites(t)
	if c, err := net.DialTimeout("unix", dockerPluginSock, time.Second); err == nil {
		c.Close()
		skipOrFail(t, dockerPluginSock+" is served by another process (an nftbridge daemon already running?)")
	}
	dir, err := os.MkdirTemp("", "nbdock-")
	if err != nil {
		t.Fatal(err)
	}
	w := newWorld(t)
	d := &dockerWorld{world: w, dir: dir, docker: docker}
	t.Cleanup(d.close) // runs before the world's cleanup removes the namespaces
	d.madeDirs = missingDirs(dockerPluginDir)
	d.tablesBefore = w.nft("list", "tables")
	d.startDaemon()
	d.startDockerd()
	d.importImage()
	return d
}

// missingDirs lists dir and those of its parents that do not exist yet.
func missingDirs(dir string) []string {
	var out []string
	for ; dir != "/"; dir = filepath.Dir(dir) {
		if _, err := os.Stat(dir); err == nil {
			break
		}
		out = append(out, dir)
	}
	return out
}

// start runs args in the host namespace with output to a log file.
func (d *dockerWorld) start(name string, args ...string) *dockerProc {
	d.t.Helper()
	p := &dockerProc{name: name, log: filepath.Join(d.dir, name+".log"), done: make(chan struct{})}
	logFile, err := os.OpenFile(p.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		d.t.Fatal(err)
	}
	defer logFile.Close()
	argv := append([]string{"--net=/run/netns/" + d.host}, args...)
	p.cmd = exec.Command("nsenter", argv...)
	p.cmd.Stdout, p.cmd.Stderr = logFile, logFile
	if err := p.cmd.Start(); err != nil {
		d.t.Fatalf("start %s: %v", name, err)
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	return p
}

// stop sends sig and waits up to grace for the process to exit, then
// kills it.
func (p *dockerProc) stop(sig syscall.Signal, grace time.Duration) {
	if p == nil {
		return
	}
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(grace):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

func (p *dockerProc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// startDaemon starts `nftbridge daemon` on the default socket with this
// world's state directory and waits until it answers.
func (d *dockerWorld) startDaemon() {
	d.t.Helper()
	d.daemon = d.start("nftbridge-daemon", d.bin, "--debug", "--state-dir", d.stateDir, "daemon")
	d.waitFor("the nftbridge daemon's socket", d.daemon, func() bool {
		c, err := net.DialTimeout("unix", dockerPluginSock, time.Second)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
}

// startDockerd starts a dockerd of the test's own, configured the way
// the README's "Use with Docker" tells users to.
func (d *dockerWorld) startDockerd() {
	d.t.Helper()
	d.dockerd = d.start("dockerd", "dockerd",
		"--iptables=false", "--ip6tables=false", "--bridge=none", "--userland-proxy=false",
		"--data-root", filepath.Join(d.dir, "data"), "--exec-root", filepath.Join(d.dir, "exec"),
		"--pidfile", filepath.Join(d.dir, "docker.pid"), "-H", "unix://"+d.apiSocket(),
		"--cgroup-parent", d.cgroupParent())
	d.waitFor("dockerd's API", d.dockerd, func() bool { return d.dockerCmd("version").code == 0 })
}

func (d *dockerWorld) apiSocket() string { return filepath.Join(d.dir, "docker.sock") }

// cgroupParent keeps the containers' cgroups apart, to remove them after.
func (d *dockerWorld) cgroupParent() string { return "nbe2e-" + d.id }

// waitGone waits until the process in pidFile has exited and been reaped.
func (d *dockerWorld) waitGone(pidFile string) {
	d.t.Helper()
	data, err := os.ReadFile(pidFile)
	if err != nil {
		return // never started, or already cleaned up
	}
	proc := "/proc/" + strings.TrimSpace(string(data))
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if _, err := os.Stat(proc); err != nil {
			return
		}
	}
	d.t.Fatalf("%s (from %s) still exists after 30s", proc, pidFile)
}

// waitFor polls ready for up to a minute, failing early if p exits.
func (d *dockerWorld) waitFor(what string, p *dockerProc, ready func() bool) {
	d.t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !ready() {
		if p.exited() {
			d.t.Fatalf("%s: %s exited:\n%s", what, p.name, tail(p.log, 40))
		}
		if time.Now().After(deadline) {
			d.t.Fatalf("%s not ready after a minute:\n%s", what, tail(p.log, 40))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// importImage builds the image from one static binary, e2e/dockerecho.
func (d *dockerWorld) importImage() {
	d.t.Helper()
	bin := filepath.Join(d.dir, "dockerecho")
	cmd := exec.Command(goTool(), "build", "-o", bin, "./e2e/dockerecho")
	cmd.Dir = ".." // the repository root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		d.t.Fatalf("go build ./e2e/dockerecho: %v\n%s", err, out)
	}
	rootfs := filepath.Join(d.dir, "rootfs.tar")
	if err := tarOneFile(rootfs, bin, "dockerecho"); err != nil {
		d.t.Fatal(err)
	}
	d.mustDocker("import", rootfs, dockerImage)
}

func tarOneFile(tarPath, file, name string) error {
	data, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	f, err := os.Create(tarPath)
	if err != nil {
		return err
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o755, Size: int64(len(data)), Typeflag: tar.TypeReg}); err != nil {
		return err
	}
	if _, err := tw.Write(data); err != nil {
		return err
	}
	return tw.Close()
}

// dockerCmd runs the docker CLI against this world's dockerd.
func (d *dockerWorld) dockerCmd(args ...string) cmdResult {
	return run(append([]string{d.docker, "-H", "unix://" + d.apiSocket()}, args...)...)
}

// mustDocker runs docker and fails the test unless it succeeded; it
// returns stdout without the trailing newline.
func (d *dockerWorld) mustDocker(args ...string) string {
	d.t.Helper()
	return strings.TrimSpace(d.must(d.dockerCmd(args...)).stdout)
}

// containerIP is a container's address on a network.
func (d *dockerWorld) containerIP(container, network string) string {
	d.t.Helper()
	return d.mustDocker("inspect", "-f", fmt.Sprintf(`{{(index .NetworkSettings.Networks %q).IPAddress}}`, network), container)
}

// probeFrom probes addr from inside a running container.
func (d *dockerWorld) probeFrom(container, proto, addr string, timeout time.Duration) (echo.Outcome, string) {
	d.t.Helper()
	r := d.dockerCmd("exec", container, "/dockerecho", "probe", proto, addr, "-timeout", timeout.String())
	var res struct{ Outcome, Peer, Err string }
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &res) != nil {
		d.t.Fatalf("probe from container %s: %v", container, r)
	}
	return echo.Outcome(res.Outcome), res.Peer
}
