package notifiers

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/slack-go/slack"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/config"
)

// Slack limits (characters).
const (
	slackHeader   = 150
	slackSection  = 3000
	slackField    = 2000
	slackFields   = 10
	slackMaxBlock = 50
	slackFallback = 3000
)

// Slack posts Block Kit messages with a bot token (chat.postMessage; later
// messages of an incident go to its thread, and chat.update marks it
// resolved) or to an incoming webhook (no threads: each message stands
// alone).
//
// With a signing secret configured (interactive), a page carries the
// buttons Acknowledge and Silence 1h, an approval request Approve and
// Refuse, both Open in assertd; their clicks go to the Slack app's
// Interactivity Request URL, assertd's /api/v1/slack/interactions.
type Slack struct {
	api         *slack.Client // nil with a webhook
	channel     string
	hook        string
	hc          *http.Client
	interactive bool
}

func newSlack(c *config.Slack, token, hook string, hc *http.Client) *Slack {
	interactive := c.SigningSecretEnv != "" || c.SigningSecretFile != ""
	if token == "" {
		return &Slack{hook: hook, hc: hc, interactive: interactive}
	}
	api := c.APIURL
	if api == "" {
		api = slack.APIURL
	}
	if !strings.HasSuffix(api, "/") {
		api += "/"
	}
	return &Slack{api: slack.New(token, slack.OptionAPIURL(api), slack.OptionHTTPClient(hc)), channel: c.Channel, hc: hc, interactive: interactive}
}

// Notify posts m, threads it under the incident's first message, or
// updates that message when the incident resolved.
func (s *Slack) Notify(ctx context.Context, m *Message) (bool, error) {
	ctx, c := withCapture(ctx)
	blocks := slackBlocks(m, s.interactive)
	text := truncateRunes(title(m)+": "+summary(m.Notices[0]), slackFallback)
	if s.api == nil {
		err := slack.PostWebhookCustomHTTPContext(ctx, s.hook, s.hc, &slack.WebhookMessage{Text: text, Blocks: &slack.Blocks{BlockSet: blocks}})
		if err != nil {
			return classifySlack(err, c)
		}
		return false, nil
	}
	opts := []slack.MsgOption{slack.MsgOptionText(text, false), slack.MsgOptionBlocks(blocks...)}
	ch, ts, threaded := strings.Cut(m.Thread, "/")
	if !threaded || ts == "" {
		gotCh, gotTS, err := s.api.PostMessageContext(ctx, s.channel, opts...)
		if err != nil {
			return classifySlack(err, c)
		}
		m.ProviderID = gotCh + "/" + gotTS
		return false, nil
	}
	if m.Kind == assertd.NoticeResolve && m.Resolved {
		// Update first: a retry after a failed reply updates again
		// (harmless) instead of replying twice.
		if _, _, _, err := s.api.UpdateMessageContext(ctx, ch, ts, opts...); err != nil {
			return classifySlack(err, c)
		}
	}
	if _, _, err := s.api.PostMessageContext(ctx, ch, append(opts, slack.MsgOptionTS(ts))...); err != nil {
		return classifySlack(err, c)
	}
	m.ProviderID = m.Thread
	return false, nil
}

// Slack error codes (answered with HTTP 200 and ok:false) worth a retry.
var slackRetryable = []string{"ratelimited", "rate_limited", "service_unavailable", "fatal_error", "internal_error", "request_timeout"}

func classifySlack(err error, c *capture) (bool, error) {
	var rl *slack.RateLimitedError
	var sc slack.StatusCodeError
	var se slack.SlackErrorResponse
	switch {
	case errors.As(err, &rl):
		return true, &RetryAfterError{After: rl.RetryAfter, Err: fmt.Errorf("slack: rate limited (HTTP 429), retry after %s", rl.RetryAfter)}
	case errors.As(err, &sc):
		err = fmt.Errorf("slack: HTTP %d: %s", sc.Code, c.excerpt())
		if !sc.Retryable() {
			return false, fmt.Errorf("slack refused the message: %w", err)
		}
		if ra := retryAfterHeader(c.retryAfter, time.Now()); ra > 0 {
			err = &RetryAfterError{After: ra, Err: err}
		}
		return true, err
	case errors.As(err, &se):
		err = fmt.Errorf("slack: %s", excerpt(se.Err))
		if slices.Contains(slackRetryable, se.Err) {
			return true, err
		}
		return false, fmt.Errorf("slack refused the message: %w", err)
	case c.status != 0:
		return true, fmt.Errorf("slack: garbled answer (HTTP %d): %s", c.status, c.excerpt())
	}
	return true, fmt.Errorf("slack: %w", err)
}

var slackEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

func esc(s string) string { return slackEscaper.Replace(s) }

func mrkdwn(s string, limit int) *slack.TextBlockObject {
	return slack.NewTextBlockObject(slack.MarkdownType, truncateRunes(s, limit), false, false)
}

// slackBlocks renders m in Block Kit, within Slack's limits.
func slackBlocks(m *Message, interactive bool) []slack.Block {
	n := m.Notices[0]
	icon := map[string]string{"RESOLVED": "✅", "INFO": "ℹ️", "ACKNOWLEDGED": "✋", "APPROVAL NEEDED": "❓"}[state(m)]
	if icon == "" {
		icon = "🔴"
	}
	blocks := []slack.Block{
		slack.NewHeaderBlock(slack.NewTextBlockObject(slack.PlainTextType, truncateRunes(icon+" "+title(m), slackHeader), true, false)),
	}
	if len(m.Notices) == 1 {
		text := "*" + esc(summary(n)) + "*"
		if n.Description != "" {
			text += "\n" + esc(n.Description)
		}
		if s := summary(n); s != n.Reason && n.Reason != "" {
			text += "\n" + esc(n.Reason)
		}
		var fields []*slack.TextBlockObject
		if len(n.Labels) > 0 {
			fields = append(fields, mrkdwn("*Instance*\n"+esc(n.Labels.String()), slackField))
		}
		if v := values(n.Values); v != "" {
			fields = append(fields, mrkdwn("*Values*\n"+esc(v), slackField))
		}
		blocks = append(blocks, slack.NewSectionBlock(mrkdwn(text, slackSection), fields, nil))
		if n.StepLog != "" {
			blocks = append(blocks, slack.NewSectionBlock(mrkdwn("*Run "+esc(n.RunID)+"*\n```"+esc(tail(n.StepLog, slackSection-200))+"```", slackSection), nil, nil))
		}
	} else {
		for i, g := range m.Notices {
			if i == slackMaxBlock-5 {
				blocks = append(blocks, slack.NewSectionBlock(mrkdwn(fmt.Sprintf("… and %d more", len(m.Notices)-i), slackSection), nil, nil))
				break
			}
			line := "*" + esc(g.Labels.String()) + "*: " + esc(summary(g))
			if v := values(g.Values); v != "" {
				line += " (" + esc(v) + ")"
			}
			blocks = append(blocks, slack.NewSectionBlock(mrkdwn(line, slackSection), nil, nil))
		}
	}
	ctx := []slack.MixedElement{mrkdwn(esc(runSummary(n)), slackField)}
	if link := uiLink(m.UI, n); link != "" {
		ctx = append(ctx, mrkdwn("<"+link+"|Open in assertd>", slackField))
	}
	blocks = append(blocks, slack.NewContextBlock("", ctx...))
	if interactive {
		if acts := slackActions(m); acts != nil {
			blocks = append(blocks, acts)
		}
	}
	return blocks
}

// slackActions are the buttons of a message, nil when it has none: a page
// of one instance may be acknowledged or silenced, an approval request
// approved or refused.
func slackActions(m *Message) *slack.ActionBlock {
	n := m.Notices[0]
	button := func(a assertd.ChatAction, text, style string) slack.BlockElement {
		b := slack.NewButtonBlockElement(a.ActionID(), a.Value(), slack.NewTextBlockObject(slack.PlainTextType, text, false, false))
		b.Style = slack.Style(style)
		return b
	}
	var els []slack.BlockElement
	switch {
	case m.Kind == assertd.NoticeTrigger && len(m.Notices) == 1 && n.Fingerprint != "" && !strings.HasPrefix(n.Assert, "notifier "):
		inst := assertd.ChatAction{Assert: n.Assert, Fingerprint: n.Fingerprint}
		ack, sil := inst, inst
		ack.Verb, sil.Verb = assertd.ChatAck, assertd.ChatSilence
		els = append(els, button(ack, "Acknowledge", "primary"), button(sil, "Silence 1h", ""))
	case m.Kind == assertd.NoticeInfo && n.Approval != "":
		run := assertd.ChatAction{Run: n.Approval}
		yes, no := run, run
		yes.Verb, no.Verb = assertd.ChatApprove, assertd.ChatRefuse
		els = append(els, button(yes, "Approve", "primary"), button(no, "Refuse", "danger"))
	default:
		return nil
	}
	if link := uiLink(m.UI, n); link != "" {
		b := button(assertd.ChatAction{Verb: assertd.ChatOpen}, "Open in assertd", "")
		b.(*slack.ButtonBlockElement).URL = link
		els = append(els, b)
	}
	return slack.NewActionBlock(assertd.ChatActionsBlock, els...)
}
