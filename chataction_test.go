package assertd

import "testing"

func TestChatActionRoundTrip(t *testing.T) {
	for _, a := range []ChatAction{
		{Verb: ChatAck, Assert: "pg-connections", Fingerprint: "3b7b9e17b1b81ea8"},
		{Verb: ChatSilence, Assert: "pg", Fingerprint: "ab"},
		{Verb: ChatApprove, Run: "run-7"},
		{Verb: ChatRefuse, Run: "run-7"},
	} {
		got, err := ParseChatAction(a.ActionID(), a.Value())
		if err != nil || got != a {
			t.Errorf("%+v: got %+v, %v", a, got, err)
		}
	}
	for _, tc := range []struct{ id, value string }{
		{"other.ack", `{"assert":"a","fingerprint":"f"}`}, // not assertd's
		{"assertd.delete", `{}`},                          // no such verb
		{"assertd.ack", `{"assert":"a"}`},                 // no instance
		{"assertd.approve", `{"assert":"a"}`},             // no run
		{"assertd.ack", `not json`},
	} {
		if a, err := ParseChatAction(tc.id, tc.value); err == nil {
			t.Errorf("%s %s: accepted as %+v", tc.id, tc.value, a)
		}
	}
	if a, err := ParseChatAction("assertd.open", ""); err != nil || a.Verb != ChatOpen {
		t.Errorf("open: %+v %v", a, err)
	}
}
