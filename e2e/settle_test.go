package e2e

import (
	"fmt"
	"regexp"
	"strconv"
	"time"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/store"
)

// evaluations reads assertd_evaluations_total of an assert from /metrics.
func (r *rig) evaluations(assert string) float64 {
	r.t.Helper()
	_, body := r.get("/metrics", "")
	m := regexp.MustCompile(`(?m)^assertd_evaluations_total\{assert="` + regexp.QuoteMeta(assert) + `"\} (\S+)$`).FindStringSubmatch(body)
	if m == nil {
		return 0
	}
	v, _ := strconv.ParseFloat(m[1], 64)
	return v
}

// settled waits until assert has been evaluated n more times and the outbox
// holds nothing left to deliver. Whatever those evaluations decided has then
// reached the channels, so counting pages afterwards shows that nothing else
// was sent — by counters, not by waiting a while.
func (r *rig) settled(assert string, n int) {
	r.t.Helper()
	start := r.evaluations(assert)
	r.eventually(60*time.Second, fmt.Sprintf("%d more evaluations of %s and an empty outbox", n, assert), func() error {
		if got := r.evaluations(assert) - start; got < float64(n) {
			return fmt.Errorf("%v more evaluations", got)
		}
		for _, s := range []assertd.MessageStatus{assertd.MsgPending, assertd.MsgSending} {
			ms, err := r.st.Messages(r.t.Context(), store.MessageFilter{Status: s})
			if err != nil {
				return err
			}
			if len(ms) > 0 {
				return fmt.Errorf("%d messages %s", len(ms), s)
			}
		}
		return nil
	})
}
