package bench

import (
	"bufio"
	"os"
	"os/exec"
	"runtime"
	"strings"
)

// Machine describes where the numbers come from.
type Machine struct {
	NProc      int
	CPUModel   string
	Kernel     string
	MemTotal   string
	Go         string
	Nft        string
	IptLegacy  string
	IptNFT     string
	LoadBefore string
	LoadAfter  string
}

// DescribeMachine reads the machine's description.
func DescribeMachine() Machine {
	return Machine{
		NProc:      runtime.NumCPU(),
		CPUModel:   procField("/proc/cpuinfo", "model name"),
		Kernel:     firstLine("uname", "-srm"),
		MemTotal:   procField("/proc/meminfo", "MemTotal"),
		Go:         runtime.Version(),
		Nft:        firstLine("nft", "--version"),
		IptLegacy:  firstLine("iptables-legacy", "--version"),
		IptNFT:     firstLine("iptables-nft", "--version"),
		LoadBefore: loadAverage(),
	}
}

func loadAverage() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

func firstLine(name string, args ...string) string {
	out, err := exec.Command(name, args...).Output()
	if err != nil {
		return "unknown"
	}
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	return line
}

// procField is the value of the first "key: value" line with that key.
func procField(path, key string) string {
	f, err := os.Open(path)
	if err != nil {
		return "unknown"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == key {
			return strings.Join(strings.Fields(v), " ")
		}
	}
	return "unknown"
}
