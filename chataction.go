package assertd

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// ChatVerb is what a button in a chat message asks assertd to do.
type ChatVerb string

// The verbs of the buttons assertd puts in messages.
const (
	ChatAck     ChatVerb = "ack"     // acknowledge the page of an instance
	ChatSilence ChatVerb = "silence" // silence the instance's labels for an hour
	ChatApprove ChatVerb = "approve" // approve a run waiting for an approval
	ChatRefuse  ChatVerb = "refuse"  // refuse it: the instance is paged instead
	ChatOpen    ChatVerb = "open"    // a link to the UI: nothing to do
)

// ChatActionsBlock is the block ID of the buttons of a message: a click
// answered in place replaces the block.
const ChatActionsBlock = "assertd.actions"

// ChatActionPrefix starts the action ID of every button assertd renders
// ("assertd.ack" …); the button's value is a ChatAction in JSON.
const ChatActionPrefix = "assertd."

// ChatAction is what a button names: an instance (ack, silence) or a run
// (approve, refuse). It carries no secret: a click is authenticated by the
// chat service's request signature, and applied as its user.
type ChatAction struct {
	Verb        ChatVerb `json:"-"`
	Assert      string   `json:"assert,omitempty"`
	Fingerprint string   `json:"fingerprint,omitempty"`
	Run         string   `json:"run,omitempty"`
}

// ActionID is the button's action ID.
func (a ChatAction) ActionID() string { return ChatActionPrefix + string(a.Verb) }

// Value is the button's value.
func (a ChatAction) Value() string {
	b, _ := json.Marshal(a)
	return string(b)
}

// ParseChatAction reads a button's action ID and value back.
func ParseChatAction(actionID, value string) (ChatAction, error) {
	verb, ok := strings.CutPrefix(actionID, ChatActionPrefix)
	if !ok {
		return ChatAction{}, fmt.Errorf("action %q is not one of assertd's buttons", actionID)
	}
	a := ChatAction{Verb: ChatVerb(verb)}
	switch a.Verb {
	case ChatOpen:
		return a, nil
	case ChatAck, ChatSilence, ChatApprove, ChatRefuse:
	default:
		return a, fmt.Errorf("unknown button %q", actionID)
	}
	if err := json.Unmarshal([]byte(value), &a); err != nil {
		return a, fmt.Errorf("button %s: its value is not assertd's: %w", actionID, err)
	}
	switch {
	case (a.Verb == ChatAck || a.Verb == ChatSilence) && (a.Assert == "" || a.Fingerprint == ""):
		return a, errors.New("button " + actionID + " names no instance")
	case (a.Verb == ChatApprove || a.Verb == ChatRefuse) && a.Run == "":
		return a, errors.New("button " + actionID + " names no run")
	}
	return a, nil
}
