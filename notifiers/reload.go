package notifiers

import (
	"reflect"
	"slices"
	"time"

	"golang.org/x/time/rate"

	"github.com/assertd/assertd/config"
)

// Next is a set of channels and policies built by Prepare, to be put in
// force by Swap.
type Next struct {
	ui       string
	policies map[string]config.EscalationPolicy
	order    []string
	chans    map[string]*channel
	cfgs     map[string]config.Notifier
	secrets  map[string][]string // by channel: the values its secrets had
	redact   redactor
}

// Prepare builds the channels of cfg, reading their secrets again (by
// variable, or file relative to dir), changing nothing: a missing or
// unreadable secret is an error naming the channel and the setting, never
// the secret.
func (d *Deliverer) Prepare(cfg *config.Config, dir string, getenv func(string) string) (*Next, error) {
	n := &Next{ui: cfg.Web.ExternalURL, policies: map[string]config.EscalationPolicy{}, chans: map[string]*channel{},
		cfgs: map[string]config.Notifier{}, secrets: map[string][]string{}}
	for _, c := range cfg.Notifiers {
		sec := &secrets{dir: dir, getenv: getenv}
		nt, kind := d.o.Notifiers[c.Name], "custom"
		if nt == nil {
			var err error
			if nt, kind, err = build(c, sec, d.o, n.ui); err != nil {
				return nil, err
			}
		}
		ch := &channel{name: c.Name, kind: kind, n: nt}
		switch kind {
		case "pagerduty":
			rpm := c.PagerDuty.RatePerMinute
			if rpm <= 0 {
				rpm = 100
			}
			ch.limiter = rate.NewLimiter(rate.Every(time.Minute/time.Duration(rpm)), max(1, min(rpm/10, 20)))
		case "slack":
			ch.limiter = rate.NewLimiter(1, 5) // Slack allows about one message a second per channel
		case "webhook":
			ch.limiter = rate.NewLimiter(10, 20)
		}
		n.chans[c.Name], n.cfgs[c.Name], n.secrets[c.Name] = ch, c, sec.values
		n.order = append(n.order, c.Name)
		n.redact = append(n.redact, sec.values...)
	}
	for _, p := range cfg.EscalationPolicies {
		n.policies[p.Name] = p
	}
	return n, nil
}

// Swap puts prepared channels and policies in force, between two rounds of
// delivery. A channel whose settings and secrets are unchanged keeps its
// health (failures, backoff); a changed one starts afresh with its new URL
// or key. Messages already in the outbox stay there and go out on the
// channels in force when they are sent.
func (d *Deliverer) Swap(n *Next) {
	d.round.Lock()
	defer d.round.Unlock()
	d.mu.Lock()
	defer d.mu.Unlock()
	for name := range n.chans {
		old := d.chans[name]
		if old != nil && reflect.DeepEqual(d.cfgs[name], n.cfgs[name]) && slices.Equal(d.secrets[name], n.secrets[name]) {
			n.chans[name] = old
			continue
		}
		if d.m != nil && old == nil {
			d.m.up.WithLabelValues(name).Set(1)
			d.m.sent.WithLabelValues(name)
			d.m.dead.WithLabelValues(name)
		}
	}
	if d.m != nil {
		for name := range d.chans {
			if n.chans[name] == nil {
				d.m.up.DeleteLabelValues(name)
			}
		}
	}
	// Secrets of the channels replaced stay redacted: a late error may
	// still carry one.
	for _, v := range d.redact {
		if !slices.Contains(n.redact, v) {
			n.redact = append(n.redact, v)
		}
	}
	d.ui, d.policies, d.order, d.chans, d.cfgs, d.secrets, d.redact = n.ui, n.policies, n.order, n.chans, n.cfgs, n.secrets, n.redact
}

// redactor is the redactor in force.
func (d *Deliverer) redactor() redactor {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.redact
}

// SecretsChanged names the channels that n configures as they are now but
// whose secrets were read with other values (a rotated key file).
func (d *Deliverer) SecretsChanged(n *Next) []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []string
	for _, name := range n.order {
		if _, ok := d.cfgs[name]; ok && reflect.DeepEqual(d.cfgs[name], n.cfgs[name]) && !slices.Equal(d.secrets[name], n.secrets[name]) {
			out = append(out, name)
		}
	}
	return out
}
