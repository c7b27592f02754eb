package demo

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"time"

	"github.com/assertd/assertd"
)

// narrator tells the state changes of the demo's instances, a line each.
// Every instance starts uncertain, as it is in assertd until its first
// evaluation says more, so the story begins with "uncertain → ok" lines
// (an instance still uncertain says nothing until it changes).
type narrator struct {
	out  io.Writer
	last map[string]assertd.State
}

func newNarrator(out io.Writer) *narrator {
	return &narrator{out: out, last: map[string]assertd.State{}}
}

// observe prints the instances whose state changed since the last call.
func (n *narrator) observe(at time.Time, ins []assertd.Instance) {
	sort.SliceStable(ins, func(i, j int) bool { return ins[i].Assert < ins[j].Assert })
	for _, in := range ins {
		key := in.Assert + in.Labels.String()
		prev, seen := n.last[key]
		if !seen {
			prev = assertd.Uncertain
		}
		n.last[key] = in.State
		if prev == in.State {
			continue
		}
		line := fmt.Sprintf("%s  %-20s %s → %s", at.Format("15:04:05"), in.Assert, prev, in.State)
		if in.Reason != "" {
			line += ": " + in.Reason
		}
		fmt.Fprintln(n.out, line)
	}
}

// narrate polls assertd's instances every second and narrates them.
func narrate(ctx context.Context, base string, out io.Writer) {
	n := newNarrator(out)
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if ins, err := instances(ctx, base); err == nil {
			n.observe(time.Now(), ins)
		}
	}
}

// instances reads assertd's instances from its API.
func instances(ctx context.Context, base string) ([]assertd.Instance, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/v1/instances", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("instances: %s", resp.Status)
	}
	var body struct {
		Instances []assertd.Instance `json:"instances"`
	}
	return body.Instances, json.NewDecoder(resp.Body).Decode(&body)
}
