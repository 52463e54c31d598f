package bench

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// Step is one command the "steps" role runs inside a namespace. Timed steps
// are measured from fork to reaping (wall time) with the child's peak RSS
// from wait4; untimed steps (undo work between repetitions) are not.
type Step struct {
	Argv      []string
	Stdin     string // file to read stdin from
	Timed     bool
	AllowFail bool // a -C check that is expected to fail
}

// StepResult is one step's outcome.
type StepResult struct {
	WallNS   int64
	MaxRSSKB int64
	Exit     int
}

// roleSteps runs the steps in the JSON file given by -spec, in order, and
// prints their results. Running them from inside the namespace keeps
// `ip netns exec` out of the measured time.
func roleSteps(args []string) error {
	fs := flag.NewFlagSet("steps", flag.ContinueOnError)
	spec := fs.String("spec", "", "JSON file of steps")
	if err := fs.Parse(args); err != nil {
		return err
	}
	data, err := os.ReadFile(*spec)
	if err != nil {
		return err
	}
	var steps []Step
	if err := json.Unmarshal(data, &steps); err != nil {
		return err
	}
	results := make([]StepResult, 0, len(steps))
	for _, s := range steps {
		r, err := runStep(s)
		if err != nil {
			return err
		}
		results = append(results, r)
	}
	return printJSON(results)
}

// roleStepServe runs one step per line of stdin (a JSON Step) and answers
// each with one line (a JSON StepResult), after a first "ready" line. Kept
// running in several namespaces, it lets the benchmark alternate between
// them call by call.
func roleStepServe(args []string) error {
	if len(args) != 0 {
		return fmt.Errorf("stepserve takes no arguments, got %q", args)
	}
	return serveLines(func(line []byte) (any, error) {
		var s Step
		if err := json.Unmarshal(line, &s); err != nil {
			return nil, fmt.Errorf("step %q: %w", line, err)
		}
		return runStep(s)
	})
}

// serveLines prints "ready", then answers each line of stdin with the JSON
// of fn's result on one line, until stdin closes.
func serveLines(fn func(line []byte) (any, error)) error {
	if _, err := fmt.Println("ready"); err != nil {
		return err
	}
	sc := bufio.NewScanner(os.Stdin)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		v, err := fn(sc.Bytes())
		if err != nil {
			return err
		}
		if err := printJSON(v); err != nil {
			return err
		}
	}
	return sc.Err()
}

func runStep(s Step) (StepResult, error) {
	cmd := exec.Command(s.Argv[0], s.Argv[1:]...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if s.Stdin != "" {
		f, err := os.Open(s.Stdin)
		if err != nil {
			return StepResult{}, err
		}
		defer f.Close()
		cmd.Stdin = f
	}
	start := time.Now()
	err := cmd.Run()
	wall := time.Since(start)
	res := StepResult{WallNS: wall.Nanoseconds()}
	if cmd.ProcessState != nil {
		res.Exit = cmd.ProcessState.ExitCode()
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			res.MaxRSSKB = ru.Maxrss // kilobytes on Linux
		}
	}
	var exitErr *exec.ExitError
	if err != nil && !(s.AllowFail && errors.As(err, &exitErr)) {
		return res, fmt.Errorf("%s: %v: %s", strings.Join(s.Argv, " "), err, lastLines(stderr.String(), 6))
	}
	return res, nil
}

// RunSteps runs steps inside ns through the steps role.
func (s *Sandbox) RunSteps(ns, tmpDir string, steps []Step) ([]StepResult, error) {
	f, err := os.CreateTemp(tmpDir, "steps-*.json")
	if err != nil {
		return nil, err
	}
	defer os.Remove(f.Name())
	if err := json.NewEncoder(f).Encode(steps); err != nil {
		f.Close()
		return nil, err
	}
	f.Close()
	out, err := s.RunRole(ns, "steps", "-spec", f.Name())
	if err != nil {
		return nil, err
	}
	var res []StepResult
	if err := json.Unmarshal(out, &res); err != nil {
		return nil, fmt.Errorf("steps output %q: %w", out, err)
	}
	if len(res) != len(steps) {
		return nil, fmt.Errorf("steps: %d results for %d steps", len(res), len(steps))
	}
	return res, nil
}

// StepList is a sequence of steps where some belong to numbered
// repetitions; the wall time of a repetition is the sum of its timed steps.
type StepList struct {
	Steps []Step
	rep   []int // repetition of each step, -1 for set-up and clean-up
}

// Add appends steps to repetition rep (-1: none).
func (l *StepList) Add(rep int, steps ...Step) {
	for _, s := range steps {
		l.Steps = append(l.Steps, s)
		l.rep = append(l.rep, rep)
	}
}

// Reps sums the timed wall time of each repetition, in milliseconds, and
// takes the largest peak RSS of its timed steps (KiB).
func (l *StepList) Reps(res []StepResult) (ms []float64, rssKB []int64) {
	byRep := map[int]int{}
	for i, s := range l.Steps {
		r := l.rep[i]
		if r < 0 || !s.Timed {
			continue
		}
		k, ok := byRep[r]
		if !ok {
			k = len(ms)
			byRep[r] = k
			ms, rssKB = append(ms, 0), append(rssKB, 0)
		}
		ms[k] += float64(res[i].WallNS) / 1e6
		rssKB[k] = max(rssKB[k], res[i].MaxRSSKB)
	}
	return ms, rssKB
}

// Cmd is an untimed step; Timed a timed one.
func Cmd(argv ...string) Step   { return Step{Argv: argv} }
func Timed(argv ...string) Step { return Step{Argv: argv, Timed: true} }
