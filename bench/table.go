package bench

import (
	"fmt"
	"io"
	"slices"
	"syscall"
	"text/tabwriter"
	"time"
)

// Row is one line of the table: a figure, its baseline from the same run,
// their ratio and the goal.
type Row struct {
	Row      string // 1 … 5
	What     string
	Value    string
	Baseline string
	Ratio    float64 // value / baseline; 0: none
	Goal     string
	Met      string // yes, no, or "-" when the line has no goal
	// Bench names the figure in benchstat's format; Nanos is its value.
	Bench string
	Nanos float64
	Unit  string // ns/op unless set
}

// Table is the result of one run.
type Table struct {
	Rows    []Row
	Machine string
}

// Add appends a row.
func (t *Table) Add(r Row) { t.Rows = append(t.Rows, r) }

// Print writes the table, then the figures as benchmark lines that
// benchstat reads.
func (t *Table) Print(w io.Writer) {
	fmt.Fprintf(w, "\nassertd benchmarks — %s\n\n", t.Machine)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "row\tmeasure\tassertd\tbaseline (same run)\tratio\tgoal\tmet")
	fmt.Fprintln(tw, "---\t-------\t-------\t-------------------\t-----\t----\t---")
	for _, r := range t.Rows {
		if r.Row == "" {
			continue // a figure for the benchmark lines only
		}
		ratio := "-"
		if r.Ratio > 0 {
			ratio = fmt.Sprintf("%.2f×", r.Ratio)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Row, r.What, r.Value, r.Baseline, ratio, r.Goal, r.Met)
	}
	tw.Flush()
	fmt.Fprintln(w)
	for _, r := range t.Rows {
		if r.Bench == "" {
			continue
		}
		unit := r.Unit
		if unit == "" {
			unit = "ns/op"
		}
		fmt.Fprintf(w, "Benchmark%s \t1\t%.0f %s\n", r.Bench, r.Nanos, unit)
	}
}

func met(ok bool) string {
	if ok {
		return "yes"
	}
	return "no"
}

func secs(d time.Duration) string { return fmt.Sprintf("%.3f s", d.Seconds()) }

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/1e6) }

// median of durations.
func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}

// medianF of floats.
func medianF(f []float64) float64 {
	s := slices.Clone(f)
	slices.Sort(s)
	return s[len(s)/2]
}

// cpuTime is the process's user+system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
