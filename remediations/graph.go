package remediations

import (
	"strings"

	"github.com/assertd/assertd/internal/strictyaml"
)

// checkGraph resolves each step's on_success and on_failure and proves that
// every path from the first step ends in a passing verify (done) or in page:
// every target exists, only a verify step may end the run as done, no step is
// unreachable and there is no cycle (retries are the only bounded loop).
func checkGraph(c *Compiled, loc strictyaml.Loc, index map[string]int, errs *strictyaml.Errors) {
	n := len(c.Steps)
	names := make([]string, n)
	for i := range c.Steps {
		names[i] = c.Steps[i].Name
	}
	resolve := func(i int, key, target string, dflt int) int {
		at := loc.In("steps", i).At(key)
		switch target {
		case "":
			return dflt
		case "page":
			if key == "on_success" {
				errs.Add(at, "on_success cannot be page: a step that worked should go on (name the next step, or done after a verify)")
				return dflt
			}
			return Page
		case "done":
			if key == "on_failure" {
				errs.Add(at, "on_failure cannot be done: a failed step cannot end the run as fixed; write page or the name of a fallback step")
				return Page
			}
			return Done
		}
		j, ok := index[target]
		if !ok {
			errs.Add(at, "%s names step %q, which does not exist%s; write a step name %s", key, target,
				strictyaml.DidYouMean(target, names), map[string]string{"on_success": "or done (after a verify)", "on_failure": "or page"}[key])
			return dflt
		}
		if j == i {
			errs.Add(at, "step %q sends itself to itself: steps cannot loop; use retries: N to repeat it a bounded number of times", target)
			return dflt
		}
		return j
	}

	for i := range c.Steps {
		s := &c.Steps[i]
		next := Done
		if i+1 < n {
			next = i + 1
		}
		s.OnSuccess = resolve(i, "on_success", s.Step.OnSuccess, next)
		s.OnFailure = resolve(i, "on_failure", s.Step.OnFailure, Page)
	}

	// Reachability from the first step.
	seen := make([]bool, n)
	var stack []int
	push := func(j int) {
		if j >= 0 && !seen[j] {
			seen[j] = true
			stack = append(stack, j)
		}
	}
	push(0)
	for len(stack) > 0 {
		i := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		push(c.Steps[i].OnSuccess)
		push(c.Steps[i].OnFailure)
	}
	for i := range c.Steps {
		if !seen[i] {
			errs.Add(loc.In("steps", i).At(), "step %q can never run: no step leads to it (name it in on_success or on_failure of an earlier step, or remove it)", names[i])
		}
	}

	hasVerify := false
	for i := range c.Steps {
		s := &c.Steps[i]
		if s.Kind == "verify" {
			hasVerify = true
		} else if s.OnSuccess == Done && s.Kind != "" && seen[i] {
			at := loc.In("steps", i)
			pos := at.At()
			if s.Step.OnSuccess == "done" {
				pos = at.At("on_success")
			}
			errs.Add(pos, "the run ends after step %q without verifying the fix: add a verify step after it (verify: <assert name>), or send on_success to one", s.Name)
		}
	}
	if !hasVerify {
		errs.Add(loc.At(), "remediation %q has no verify step: every remediation must check that the assert holds again (add a step with verify: <assert name>)", c.Name)
	}

	// Cycles: depth-first search; an edge back to a step on the current path
	// closes a cycle, reported where that edge is written.
	const (
		white = iota
		grey
		black
	)
	color := make([]int, n)
	var path []int
	var visit func(i int)
	visit = func(i int) {
		color[i] = grey
		path = append(path, i)
		for _, e := range []struct {
			to  int
			key string
		}{{c.Steps[i].OnSuccess, "on_success"}, {c.Steps[i].OnFailure, "on_failure"}} {
			switch {
			case e.to < 0 || e.to == i:
			case color[e.to] == grey:
				var cyc []string
				for k := len(path) - 1; k >= 0; k-- {
					cyc = append([]string{names[path[k]]}, cyc...)
					if path[k] == e.to {
						break
					}
				}
				cyc = append(cyc, names[e.to])
				errs.Add(loc.In("steps", i).At(e.key), "steps form a cycle (%s): loops are not allowed; use retries: N on a step to repeat it a bounded number of times",
					strings.Join(cyc, " → "))
			case color[e.to] == white:
				visit(e.to)
			}
		}
		path = path[:len(path)-1]
		color[i] = black
	}
	for i := range c.Steps {
		if color[i] == white {
			visit(i)
		}
	}
}
