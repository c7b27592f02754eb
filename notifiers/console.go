package notifiers

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// Console prints each message as a few lines, for the demo and local runs.
type Console struct {
	mu sync.Mutex
	w  io.Writer
}

// NewConsole prints to w.
func NewConsole(w io.Writer) *Console { return &Console{w: w} }

// Notify prints m; it fails only when the writer does.
func (c *Console) Notify(_ context.Context, m *Message) (bool, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "[assertd %s] %s %s\n", m.Channel, m.At.UTC().Format(time.RFC3339), title(m))
	for _, n := range m.Notices {
		fmt.Fprintf(&b, "  %s %s: %s", n.Assert, n.Labels.String(), summary(n))
		if v := values(n.Values); v != "" {
			fmt.Fprintf(&b, " (%s)", v)
		}
		b.WriteString("\n")
		if link := uiLink(m.UI, n); link != "" {
			fmt.Fprintf(&b, "  %s\n", link)
		}
		if n.StepLog != "" {
			fmt.Fprintf(&b, "  run %s:\n", n.RunID)
			for line := range strings.Lines(strings.TrimRight(n.StepLog, "\n")) {
				b.WriteString("    " + line)
			}
			b.WriteString("\n")
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, err := io.WriteString(c.w, b.String()); err != nil {
		return true, fmt.Errorf("console: %w", err)
	}
	m.ProviderID = ""
	return false, nil
}
