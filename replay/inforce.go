package replay

import (
	"context"
	"fmt"

	"github.com/assertd/assertd/app"
	"github.com/assertd/assertd/config"
	"github.com/assertd/assertd/web"
)

// InForce replays the configuration in force of a running assertd over a
// window, for the UI's replay page (app.Options.Replay): the files it
// loaded, read again and refused if they changed since (then what runs is
// not what they say), the embedded TSDB it writes to, and the heartbeats'
// pings in its store. The report is rendered as the standalone page's body.
func InForce(ctx context.Context, a *app.App, w web.ReplayWindow) (web.ReplayReport, error) {
	changed := func() error {
		if a.ConfigChanged() {
			return fmt.Errorf("%w: the configuration files changed since the configuration in force was read: reload it (POST /-/reload, SIGHUP, or wait for the reload), or fix what makes the reload fail, then replay", web.ErrReplayRefused)
		}
		return nil
	}
	if err := changed(); err != nil {
		return web.ReplayReport{}, err
	}
	o := Options{ConfigPath: a.Set().ConfigPath, From: w.From, To: w.To, Step: w.Step, Getenv: a.Getenv, Pings: a.Store()}
	if emb := a.Embedded(); emb != nil {
		o.Sources = map[string]RangeSource{config.EmbeddedName: emb}
	}
	rep, err := Run(ctx, o)
	if err != nil {
		return web.ReplayReport{}, err
	}
	if err := changed(); err != nil {
		return web.ReplayReport{}, err
	}
	html, err := HTML(rep)
	if err != nil {
		return web.ReplayReport{}, err
	}
	return web.ReplayReport{HTML: html}, nil
}
