package web

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/slack-go/slack"

	"github.com/assertd/assertd"
)

// slackClickTimeout bounds the answer to Slack through a click's
// response_url: Slack wants the click's own answer within 3 seconds.
const slackClickTimeout = 2 * time.Second

// slackInteractions takes the clicks on the buttons of assertd's Slack
// messages (the Slack app's Interactivity Request URL): form-encoded
// payload=<JSON>, signed by Slack with the app's signing secret. A
// request not signed with the secret of a slack notifier, signed more than
// five minutes away from now, or seen before is refused with 401 and
// applies nothing. A signed click acts as its Slack user — the name users:
// maps the user ID to, or slack:<ID> when the channel maps none (with a
// mapping, an unlisted user may do nothing) — through the same operations
// as the API; the message is then updated in place through the click's
// response_url (or, when the action was refused, the user alone is told
// why).
func (s *server) slackInteractions(w http.ResponseWriter, r *http.Request) {
	apps, _ := s.d.ChatOps.snapshot()
	if len(apps) == 0 {
		s.signed.count("slack", resultUnprepared)
		writeError(w, http.StatusNotFound, "", "Slack interactivity is not configured: give a slack notifier signing_secret_env or signing_secret_file")
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		writeError(w, bodyErrorStatus(err), "body", "reading the body: "+err.Error())
		return
	}
	app, result := verifySlack(apps, r.Header, body)
	if app == nil {
		s.signed.count("slack", result)
		s.log.Warn("slack interaction refused", "result", result, "remote", r.RemoteAddr)
		writeError(w, http.StatusUnauthorized, "", "the request is not signed by Slack with a signing secret of this assertd, or not within "+SignatureWindow.String())
		return
	}
	ts, _ := strconv.ParseInt(r.Header.Get("X-Slack-Request-Timestamp"), 10, 64)
	fresh, full := s.replays.first("slack/"+r.Header.Get("X-Slack-Signature"), time.Unix(ts, 0).Add(2*SignatureWindow))
	if !fresh {
		if full {
			s.signed.count("slack", resultReplayed)
			writeError(w, http.StatusTooManyRequests, "", "too many Slack requests in the last minutes: try again")
			return
		}
		s.signed.count("slack", resultReplayed)
		s.log.Warn("slack interaction refused: replayed", "channel", app.channel, "remote", r.RemoteAddr)
		writeError(w, http.StatusUnauthorized, "", "this signed request was already received: a replay is refused")
		return
	}
	form, err := url.ParseQuery(string(body))
	if err != nil || form.Get("payload") == "" {
		s.signed.count("slack", resultIgnored)
		writeError(w, http.StatusBadRequest, "payload", "a Slack interaction is a form with payload=<JSON>")
		return
	}
	var cb slack.InteractionCallback
	if err := json.Unmarshal([]byte(form.Get("payload")), &cb); err != nil {
		s.signed.count("slack", resultIgnored)
		writeError(w, http.StatusBadRequest, "payload", "the payload is not a Slack interaction: "+err.Error())
		return
	}
	if cb.Type != slack.InteractionTypeBlockActions || len(cb.ActionCallback.BlockActions) == 0 {
		s.signed.count("slack", resultIgnored)
		w.WriteHeader(http.StatusOK)
		return
	}
	p, ok := app.principal(cb.User)
	if !ok {
		s.signed.count("slack", resultForbidden)
		s.auditRequest(r.Context(), p, "request.slack", cb.User.ID, "", errors.New("Slack user "+cb.User.ID+" is not in users: of notifier "+app.channel))
		s.answerSlack(r.Context(), app, cb, "", fmt.Errorf("your Slack user (%s) may not act on assertd: ask for it to be added to users: of notifier %s", cb.User.ID, app.channel))
		w.WriteHeader(http.StatusOK)
		return
	}
	for _, ba := range cb.ActionCallback.BlockActions {
		a, err := assertd.ParseChatAction(ba.ActionID, ba.Value)
		if err != nil || a.Verb == assertd.ChatOpen {
			s.signed.count("slack", resultIgnored)
			continue
		}
		done, err := s.applyChatAction(r.Context(), p, a)
		if err != nil {
			s.signed.count("slack", resultFailed)
		} else {
			s.signed.count("slack", resultApplied)
		}
		s.answerSlack(r.Context(), app, cb, done, err)
	}
	w.WriteHeader(http.StatusOK)
}

// verifySlack finds the app whose signing secret signed the request, with
// the real client library (slack.NewSecretsVerifier, which also refuses a
// timestamp more than five minutes away). Without one it says why: stale
// or unsigned.
func verifySlack(apps []slackApp, h http.Header, body []byte) (*slackApp, string) {
	result := resultUnsigned
	for i := range apps {
		sv, err := slack.NewSecretsVerifier(h, apps[i].secret)
		if errors.Is(err, slack.ErrExpiredTimestamp) {
			result = resultStale
			continue
		}
		if err != nil {
			continue
		}
		if _, err := sv.Write(body); err != nil {
			continue
		}
		if sv.Ensure() == nil {
			return &apps[i], ""
		}
	}
	return nil, result
}

// principal is who a Slack user acts as, and whether they may act.
func (a *slackApp) principal(u slack.User) (principal, bool) {
	if len(a.users) == 0 {
		return principal{Name: "slack:" + u.ID, Role: roleAdmin}, u.ID != ""
	}
	name, ok := a.users[u.ID]
	if !ok {
		return principal{Name: "slack:" + u.ID}, false
	}
	return principal{Name: name, Role: roleAdmin}, true
}

// applyChatAction carries out a button's action as p, through the
// operations the API uses, and says what was done in words.
func (s *server) applyChatAction(ctx context.Context, p principal, a assertd.ChatAction) (string, error) {
	switch a.Verb {
	case assertd.ChatAck:
		if err := s.ack(ctx, p, a.Assert, a.Fingerprint, ackInput{Comment: "from Slack"}); err != nil {
			return "", err
		}
		return "✋ Acknowledged by " + p.Name + ": no further level or repeat is paged", nil
	case assertd.ChatSilence:
		in, err := s.findInstance(ctx, a.Assert, a.Fingerprint)
		if err != nil {
			return "", err
		}
		ms := make([]assertd.Matcher, 0, len(in.Labels))
		for _, k := range slices.Sorted(maps.Keys(in.Labels)) {
			ms = append(ms, assertd.Matcher{Name: k, Op: assertd.MatchEqual, Value: in.Labels[k]})
		}
		if len(ms) == 0 {
			return "", fieldErr("matchers", "the instance has no labels to silence")
		}
		raw, _ := json.Marshal(ms)
		si, err := s.createSilence(ctx, p, silenceInput{Matchers: raw, Duration: "1h", Comment: "silenced for 1h from Slack"})
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("🔕 Silenced by %s until %s (silence %s)", p.Name, si.End.UTC().Format("15:04 MST"), si.ID), nil
	case assertd.ChatApprove, assertd.ChatRefuse:
		yes := a.Verb == assertd.ChatApprove
		if err := s.approve(ctx, p, a.Run, approveInput{Approved: &yes, Comment: "from Slack"}); err != nil {
			return "", err
		}
		if yes {
			return "✅ Approved by " + p.Name + ": run " + a.Run + " goes ahead", nil
		}
		return "⛔ Refused by " + p.Name + ": run " + a.Run + " does not run, the instance is paged", nil
	}
	return "", fmt.Errorf("unknown action %q", a.Verb)
}

// answerSlack answers a click through its response_url: done replaces the
// message's buttons with what was done, for everyone; err is told to the
// clicking user alone. A response_url that is not Slack's (nor the host of
// the channel's api_url) is not called.
func (s *server) answerSlack(ctx context.Context, app *slackApp, cb slack.InteractionCallback, done string, err error) {
	u, perr := url.Parse(cb.ResponseURL)
	if cb.ResponseURL == "" || perr != nil || !slices.Contains(app.responseHosts, u.Host) || (u.Host == "hooks.slack.com" && u.Scheme != "https") {
		s.log.Warn("slack interaction: not answering through a response_url that is not Slack's", "host", hostOf(u))
		return
	}
	var msg slack.WebhookMessage
	if err != nil {
		msg = slack.WebhookMessage{ResponseType: slack.ResponseTypeEphemeral, Text: "assertd did not do it: " + err.Error()}
	} else {
		blocks := make([]slack.Block, 0, len(cb.Message.Blocks.BlockSet)+1)
		for _, b := range cb.Message.Blocks.BlockSet {
			if ab, ok := b.(*slack.ActionBlock); ok && ab.BlockID == assertd.ChatActionsBlock {
				continue
			}
			blocks = append(blocks, b)
		}
		blocks = append(blocks, slack.NewContextBlock("assertd.done", slack.NewTextBlockObject(slack.MarkdownType,
			escSlack(done)+" · "+s.now().UTC().Format("2006-01-02 15:04 MST"), false, false)))
		msg = slack.WebhookMessage{ReplaceOriginal: true, Text: done, Blocks: &slack.Blocks{BlockSet: blocks}}
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), slackClickTimeout)
	defer cancel()
	if err := slack.PostWebhookCustomHTTPContext(ctx, cb.ResponseURL, s.signedClient, &msg); err != nil {
		s.log.Warn("slack interaction: updating the message", "channel", app.channel, "err", err)
	}
}

func hostOf(u *url.URL) string {
	if u == nil {
		return ""
	}
	return u.Host
}

var slackEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

func escSlack(s string) string { return slackEscaper.Replace(s) }

// readBody reads a bounded body and puts it back for the next reader.
func readBody(r *http.Request) ([]byte, error) {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, err
	}
	r.Body = io.NopCloser(bytes.NewReader(b))
	return b, nil
}
