package heartbeat

import (
	"context"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/assertd/assertd/config"
	"github.com/assertd/assertd/internal/fakeclock"
)

// TestExamplesRefuseAnonymousPings: in every example set, a ping without a
// credential (by name, with every action) is refused and changes no
// heartbeat, and the examples' own credentials are accepted.
func TestExamplesRefuseAnonymousPings(t *testing.T) {
	files, err := filepath.Glob("../../examples/*/assertd.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no examples: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(filepath.Dir(f)), func(t *testing.T) {
			set, errs := config.Load(f)
			if len(errs) > 0 {
				t.Fatal(errs)
			}
			clk := fakeclock.New(t0)
			tr, err := New(context.Background(), set.Heartbeats, set.Config.Pings, NewMemoryStore(), Options{
				Now:       clk.Now,
				LookupEnv: func(k string) (string, bool) { return "key-of-" + k + "-0123456789", true },
				Logger:    slog.New(slog.DiscardHandler),
			})
			if err != nil {
				t.Fatal(err)
			}
			h := tr.Handler(clk.Now)
			for _, c := range set.Heartbeats {
				for _, action := range []string{"", "/start", "/fail", "/log", "/0", "/3"} {
					for _, method := range []string{"GET", "POST", "HEAD"} {
						if w := do(h, method, "/ping/"+c.Name+action, "x"); w.Code < 400 {
							t.Errorf("anonymous %s /ping/%s%s: %d", method, c.Name, action, w.Code)
						}
					}
				}
				if rec, _ := tr.Record(c.Name); !rec.LastPing.IsZero() {
					t.Errorf("heartbeat %s was pinged anonymously", c.Name)
				}
				switch {
				case c.UUID != "":
					if w := do(h, "POST", "/ping/"+c.UUID, ""); w.Code != 200 {
						t.Errorf("ping of %s at its uuid: %d", c.Name, w.Code)
					}
				case c.KeyEnv != "":
					if w := do(h, "POST", "/ping/"+c.Name+"?key=key-of-"+c.KeyEnv+"-0123456789", ""); w.Code != 200 {
						t.Errorf("ping of %s with its key: %d", c.Name, w.Code)
					}
				}
			}
		})
	}
}
