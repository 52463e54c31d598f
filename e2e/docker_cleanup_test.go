package e2e

import (
	"bufio"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// close dumps on failure, then stops containers, dockerd and the daemon and
// removes every file the test made. The world's cleanup then removes the
// namespaces with the bridges and our table in them.
func (d *dockerWorld) close() {
	if d.t.Failed() {
		d.dump()
	}
	if d.dockerd != nil && !d.dockerd.exited() {
		if ids := strings.Fields(d.dockerCmd("ps", "-aq").stdout); len(ids) > 0 {
			d.dockerCmd(append([]string{"rm", "-f"}, ids...)...)
		}
	}
	d.dockerd.stop(syscall.SIGTERM, 30*time.Second)
	d.daemon.stop(syscall.SIGTERM, 10*time.Second)
	// A dockerd that died leaves its containers running under their shims.
	leftovers := leftoverProcesses(d.dir)
	for _, pid := range leftovers {
		d.t.Logf("cleanup: killing process %d left by a dead dockerd", pid)
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	for deadline := time.Now().Add(10 * time.Second); len(leftovers) > 0 && time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		leftovers = slices.DeleteFunc(leftovers, func(pid int) bool {
			_, err := os.Stat("/proc/" + strconv.Itoa(pid))
			return err != nil
		})
	}
	removeCgroups(d.cgroupParent())
	// dockerd bind-mounts its data root onto itself and leaves that behind
	// if it was ever killed (checkDockerdCrash kills it).
	for _, m := range mountsUnder(d.dir) {
		if r := run("umount", "-l", m); r.code != 0 {
			d.t.Errorf("cleanup: %v", r)
		}
	}
	if err := os.RemoveAll(d.dir); err != nil {
		d.t.Errorf("cleanup: %v", err)
	}
	if _, err := os.Lstat(dockerPluginSock); err == nil {
		d.t.Errorf("cleanup: %s left behind by a stopped daemon", dockerPluginSock)
		os.Remove(dockerPluginSock)
	}
	for _, dir := range d.madeDirs {
		_ = os.Remove(dir) // only if empty: someone else may use it by now
	}
}

func (d *dockerWorld) dump() {
	d.t.Logf("=== Docker world %s ===", d.id)
	if d.dockerd != nil && !d.dockerd.exited() {
		d.t.Logf("--- docker ps -a\n%s", d.dockerCmd("ps", "-a").stdout)
		d.t.Logf("--- docker network ls\n%s", d.dockerCmd("network", "ls").stdout)
	}
	d.world.dump()
	for _, p := range []*dockerProc{d.daemon, d.dockerd} {
		if p != nil {
			d.t.Logf("--- %s log (last 150 lines)\n%s", p.name, tail(p.log, 150))
		}
	}
}

// tail returns the last n lines of a file.
func tail(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// mountsUnder lists mount points below dir, deepest first.
func mountsUnder(dir string) []string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 && strings.HasPrefix(fields[4], dir+"/") {
			out = append([]string{fields[4]}, out...)
		}
	}
	return out
}

// leftoverProcesses lists the processes whose command line names dir (a
// containerd or its shims) and their children, children first.
func leftoverProcesses(dir string) []int {
	parents := map[int]bool{}
	children := map[int]int{} // pid → parent pid
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		if cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline")); err == nil && strings.Contains(string(cmdline), dir) {
			parents[pid] = true
		}
		if stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat")); err == nil {
			// The fields after the command's closing parenthesis: state, ppid, ...
			if fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:])); len(fields) > 1 {
				children[pid], _ = strconv.Atoi(fields[1])
			}
		}
	}
	var out []int
	for pid, ppid := range children {
		if parents[ppid] && !parents[pid] {
			out = append(out, pid)
		}
	}
	for pid := range parents {
		out = append(out, pid)
	}
	return out
}

// removeCgroups removes the (empty) cgroup directories named name that
// dockerd made for the containers, in every hierarchy.
func removeCgroups(name string) {
	roots, _ := filepath.Glob("/sys/fs/cgroup/*/" + name)
	roots = append(roots, "/sys/fs/cgroup/"+name)
	for _, root := range roots {
		var dirs []string
		_ = filepath.WalkDir(root, func(path string, e os.DirEntry, err error) error {
			if err == nil && e.IsDir() {
				dirs = append(dirs, path)
			}
			return nil
		})
		for _, dir := range slices.Backward(dirs) {
			_ = os.Remove(dir)
		}
	}
}
