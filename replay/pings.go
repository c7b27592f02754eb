package replay

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/app"
	"github.com/assertd/assertd/config"
	"github.com/assertd/assertd/store/sqlite"
)

// storedPings reads the pings of the config's heartbeats that the
// configured store holds, oldest first: those of the window and the last
// one before it (the state the window starts in). A store that is missing
// or cannot be read is a note, not an error: the heartbeats then have no
// pings, and their asserts are uncertain, as they would have been.
func storedPings(ctx context.Context, set *config.Set, o Options, w window) ([]assertd.Ping, []string) {
	if len(set.Heartbeats) == 0 {
		return nil, nil
	}
	if o.Pings != nil {
		return readPings(ctx, set, o.Pings, w)
	}
	c := set.Config.Store
	if c.Driver != "postgres" {
		path := c.Path
		switch {
		case path == "":
			path = filepath.Join(set.DataDir(), sqlite.File)
		case !filepath.IsAbs(path):
			path = filepath.Join(set.Dir(), path)
		}
		if _, err := os.Stat(path); err != nil {
			return nil, []string{fmt.Sprintf("heartbeats: no store at %s: no pings, heartbeat asserts uncertain", path)}
		}
	}
	st, err := app.OpenStore(ctx, set, o.Getenv, sqlite.WithLogger(o.Logger))
	if err != nil {
		return nil, []string{fmt.Sprintf("heartbeats: the store cannot be read (%v): no pings, heartbeat asserts uncertain", err)}
	}
	defer st.Close()
	return readPings(ctx, set, st, w)
}

// PingStore is where the heartbeats' pings are read.
type PingStore interface {
	Pings(ctx context.Context, heartbeat string, limit int) ([]assertd.Ping, error)
}

func readPings(ctx context.Context, set *config.Set, st PingStore, w window) ([]assertd.Ping, []string) {
	var out []assertd.Ping
	var notes []string
	for _, h := range set.Heartbeats {
		ps, err := st.Pings(ctx, h.Name, 1<<30)
		if err != nil {
			notes = append(notes, fmt.Sprintf("heartbeat %s: its pings cannot be read (%v)", h.Name, err))
			continue
		}
		before, n := false, len(out)
		for _, p := range ps { // newest first
			switch {
			case p.At.After(w.To):
			case !p.At.Before(w.From):
				out = append(out, p)
			case !before:
				before = true
				out = append(out, p)
			}
		}
		if len(out) == n {
			notes = append(notes, fmt.Sprintf("heartbeat %s: the store holds no ping of it up to the window's end: its asserts are uncertain", h.Name))
		}
	}
	slices.SortStableFunc(out, func(a, b assertd.Ping) int { return a.At.Compare(b.At) })
	return out, notes
}
