package notifiers

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/store"
)

// This file holds what the deliverer derives from the outbox, with no
// table of its own: the thread a message of an incident belongs to, and the
// notices about failing channels. Every message it adds has a key derived
// from what caused it, so replicas and restarts add it once. Which pages an
// incident gets (levels, repeats, resolves) the engine decides.

// history returns the messages of one incident key on one channel ("" for
// every channel), oldest first.
func (d *Deliverer) history(ctx context.Context, channel, key string) ([]assertd.Message, error) {
	hist, err := d.st.Messages(ctx, store.MessageFilter{Channel: channel, DedupKey: key})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(hist, func(a, b assertd.Message) int {
		if c := a.Created.Compare(b.Created); c != 0 {
			return c
		}
		return int(a.ID - b.ID)
	})
	return hist, nil
}

// before reports whether h comes before m in an incident's history.
func before(h, m assertd.Message) bool {
	return h.Created.Before(m.Created) || (h.Created.Equal(m.Created) && h.ID < m.ID)
}

// threadOf looks back from m over its channel's history, as far as the
// resolve that ended the previous incident: the provider ID of the first
// delivered page of m's incident, and whether one of its pages is still
// undelivered.
func threadOf(hist []assertd.Message, m assertd.Message) (thread string, undelivered bool) {
	for i := len(hist) - 1; i >= 0; i-- {
		h := hist[i]
		if h.ID == m.ID || !before(h, m) || h.Channel != m.Channel {
			continue
		}
		if h.Kind == string(assertd.NoticeResolve) {
			break
		}
		if h.Kind != string(assertd.NoticeTrigger) {
			continue
		}
		switch h.Status {
		case assertd.MsgDelivered:
			if h.ProviderID != "" {
				thread = h.ProviderID
			}
		case assertd.MsgPending, assertd.MsgSending:
			undelivered = true
		}
	}
	return thread, undelivered
}

// prepareResolve finds the thread a resolve answers on its channel and
// whether the thread's whole group has recovered. hold is true while a page
// of the incident on this channel is still undelivered: the resolve must
// follow it. (The engine writes a resolve for every channel it paged.)
func (d *Deliverer) prepareResolve(ctx context.Context, src assertd.Message, m *Message) (hold bool, err error) {
	if hold, err := d.prepareAck(ctx, src, m); hold || err != nil {
		return hold, err
	}
	thread := m.Thread
	m.Resolved = true
	if thread == "" {
		return false, nil
	}
	// A group resolves with its last member: every other page that went
	// out in the same thread must have a resolve of its own.
	delivered, err := d.st.Messages(ctx, store.MessageFilter{Channel: src.Channel, Status: assertd.MsgDelivered})
	if err != nil {
		return false, err
	}
	seen := map[string]bool{src.DedupKey: true}
	for _, x := range delivered {
		if x.ProviderID != thread || x.Kind != string(assertd.NoticeTrigger) || seen[x.DedupKey] {
			continue
		}
		seen[x.DedupKey] = true
		hist, err := d.history(ctx, "", x.DedupKey)
		if err != nil {
			return false, err
		}
		if !slices.ContainsFunc(hist, func(h assertd.Message) bool {
			return h.Kind == string(assertd.NoticeResolve) && !h.Created.Before(x.Created)
		}) {
			m.Resolved = false
			break
		}
	}
	return false, nil
}

// prepareAck finds the thread an acknowledgement (or a resolve) answers on
// its channel (the PagerDuty incident it acknowledges, the Slack page it
// replies to). hold is true while a page of the incident on this channel is
// still undelivered: the ack must follow it.
func (d *Deliverer) prepareAck(ctx context.Context, src assertd.Message, m *Message) (hold bool, err error) {
	all, err := d.history(ctx, src.Channel, src.DedupKey)
	if err != nil {
		return false, err
	}
	thread, undelivered := threadOf(all, src)
	if undelivered {
		return true, nil
	}
	m.Thread = thread
	return false, nil
}

// reportFailing tells the other channels about a channel that has been
// failing for FailingAfter, and logs loudly when no channel works.
func (d *Deliverer) reportFailing(ctx context.Context, now time.Time) error {
	d.mu.Lock()
	var msgs []assertd.Message
	working := 0
	for _, name := range d.order {
		c := d.chans[name]
		if c.failures == 0 || now.Sub(c.since) < d.o.FailingAfter {
			working++
			continue
		}
		if c.noticed {
			continue
		}
		c.noticed = true
		d.log.Error("notification channel failing: telling the other channels", "channel", name, "since", c.since, "failures", c.failures, "err", c.lastErr)
		msgs = append(msgs, d.channelNotices(c, assertd.NoticeTrigger, now)...)
	}
	d.m.working.Set(float64(working))
	none := working == 0 && len(d.order) > 0
	if none && !d.none {
		d.log.Error("no notification channel works: pages cannot reach anyone; they wait in the outbox", "channels", strings.Join(d.order, ","))
	}
	d.none = none
	d.mu.Unlock()
	if len(msgs) == 0 {
		return nil
	}
	_, err := d.st.Enqueue(ctx, msgs...)
	return err
}

// healthy records a success of ch; if the others were told it failed,
// they are told it recovered.
func (d *Deliverer) healthy(ctx context.Context, ch *channel, now time.Time) {
	d.mu.Lock()
	d.m.up.WithLabelValues(ch.name).Set(1)
	if ch.failures == 0 {
		d.mu.Unlock()
		return
	}
	var msgs []assertd.Message
	if ch.noticed {
		msgs = d.channelNotices(ch, assertd.NoticeResolve, now)
	}
	d.log.Info("notification channel works again", "channel", ch.name, "failing_since", ch.since, "failures", ch.failures)
	ch.failures, ch.since, ch.until, ch.lastErr, ch.noticed = 0, time.Time{}, time.Time{}, "", false
	d.mu.Unlock()
	if len(msgs) > 0 {
		if _, err := d.st.Enqueue(context.WithoutCancel(ctx), msgs...); err != nil {
			d.log.Warn("recovered-channel notice", "channel", ch.name, "err", d.redact.String(err.Error()))
		}
	}
}

// channelNotices are the "channel X failing since T" pages (or their
// resolves) for every other channel. Called with d.mu held.
func (d *Deliverer) channelNotices(c *channel, kind assertd.NoticeKind, now time.Time) []assertd.Message {
	since := c.since.UTC().Format(time.RFC3339)
	n := assertd.Notice{Version: assertd.NoticeVersion, Kind: kind, Assert: "notifier " + c.name,
		Labels: assertd.Labels{"channel": c.name, "severity": "warning"}, State: assertd.Uncertain, At: now, Since: c.since,
		Reason:      fmt.Sprintf("%s has failed %d times in a row since %s: %s", c.name, c.failures, since, c.lastErr),
		Annotations: map[string]string{"summary": fmt.Sprintf("channel %s failing since %s", c.name, since)}}
	if kind == assertd.NoticeResolve {
		n.State = assertd.OK
		n.Annotations["summary"] = fmt.Sprintf("channel %s works again (failing since %s)", c.name, since)
		n.Reason = n.Annotations["summary"]
	}
	payload, _ := json.Marshal(n)
	var out []assertd.Message
	for _, other := range d.order {
		if other == c.name {
			continue
		}
		out = append(out, assertd.Message{Key: fmt.Sprintf("channel/%s/%d/%s/%s", c.name, c.since.UnixMicro(), kind, other),
			Channel: other, DedupKey: "channel/" + c.name, Kind: string(kind), Payload: string(payload), Created: now, NextAttempt: now})
	}
	return out
}
