// Command cmdtime times whole processes, interleaved, and prints medians: a stand-in for
// hyperfine, which is not installed everywhere. Besides the wall-clock time it reports the
// CPU time of each process (user + system, from its rusage), which a loaded machine disturbs
// far less: on a shared machine it is the figure to compare. Each argument is one command line (split on
// spaces, no quoting); run r runs every command once, in turn, so that a change of load on
// the machine hits all of them alike.
//
//	go run ./bench/cmdtime -runs 50 "/tmp/pmdaemon list --json" "/tmp/listfloor"
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
	"time"
)

func main() {
	runs := flag.Int("runs", 30, "runs of each command")
	warmup := flag.Int("warmup", 3, "untimed runs of each command first (page cache)")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: cmdtime [-runs N] [-warmup N] 'CMD ARGS' ['CMD ARGS'...]\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() == 0 || *runs < 1 || *warmup < 0 {
		flag.Usage()
		os.Exit(2)
	}
	cmds := make([][]string, flag.NArg())
	for i, c := range flag.Args() {
		if cmds[i] = strings.Fields(c); len(cmds[i]) == 0 {
			fmt.Fprintf(os.Stderr, "Error: argument %d is an empty command\n", i+1)
			os.Exit(2)
		}
	}
	times := make([][]time.Duration, len(cmds))
	cpus := make([][]time.Duration, len(cmds))
	for r := -*warmup; r < *runs; r++ {
		for i, c := range cmds {
			d, cpu, err := timeOne(c)
			if err != nil {
				fmt.Fprintf(os.Stderr, "Error: %s: %v\n", strings.Join(c, " "), err)
				os.Exit(1)
			}
			if r >= 0 {
				times[i] = append(times[i], d)
				cpus[i] = append(cpus[i], cpu)
			}
		}
	}
	var base, baseCPU time.Duration
	for i, c := range cmds {
		ts, cs := times[i], cpus[i]
		med, cpu := median(ts), median(cs)
		ratio := ""
		if i == 0 {
			base, baseCPU = med, cpu
		} else {
			ratio = fmt.Sprintf("  %.2fx / %.2fx the first", float64(med)/float64(base), float64(cpu)/float64(baseCPU))
		}
		fmt.Printf("%s\n  wall median %6.2f ms (min %.2f, max %.2f)  cpu median %6.2f ms (min %.2f, max %.2f)  n=%d%s\n",
			strings.Join(c, " "), ms(med), ms(ts[0]), ms(ts[len(ts)-1]), ms(cpu), ms(cs[0]), ms(cs[len(cs)-1]), len(ts), ratio)
	}
}

// median sorts ts and returns its median.
func median(ts []time.Duration) time.Duration {
	slices.Sort(ts)
	if len(ts)%2 == 0 {
		return (ts[len(ts)/2-1] + ts[len(ts)/2]) / 2
	}
	return ts[len(ts)/2]
}

// timeOne runs c to its end, output discarded, and returns the time from before the fork
// to after the wait and the process's CPU time.
func timeOne(c []string) (wall, cpu time.Duration, err error) {
	cmd := exec.Command(c[0], c[1:]...)
	cmd.Stdout = io.Discard
	var stderr strings.Builder
	cmd.Stderr = &stderr
	began := time.Now()
	err = cmd.Run()
	wall = time.Since(began)
	if err != nil {
		return 0, 0, fmt.Errorf("%w: %s", err, strings.TrimSpace(stderr.String()))
	}
	return wall, cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime(), nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
