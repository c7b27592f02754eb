package demo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/assertd/assertd/app"
	"github.com/assertd/assertd/examples"
)

// DefaultService is where the quickstart expects the demo service.
const DefaultService = "127.0.0.1:8081"

// Options configure the demo.
type Options struct {
	DataDir  string        // "" : a temporary directory, removed at the end
	Listen   string        // assertd's listener (UI), default 127.0.0.1:8080
	Service  string        // the demo service, default 127.0.0.1:8081 (the quickstart scrapes it there)
	AutoSlow time.Duration // switch the latency fault on after this (0: 20s; <0: never)
	Out      io.Writer     // the story as it happens
	Logger   *slog.Logger
}

// Run starts the demo service and assertd on the quickstart set, tells the
// story on Out, and runs until ctx ends.
func Run(ctx context.Context, o Options) error {
	if o.Listen == "" {
		o.Listen = "127.0.0.1:8080"
	}
	if o.Service == "" {
		o.Service = DefaultService
	}
	if o.AutoSlow == 0 {
		o.AutoSlow = 20 * time.Second
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	dir, err := os.MkdirTemp("", "assertd-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	data := o.DataDir
	if data == "" {
		data = filepath.Join(dir, "data")
	}

	svc := New(nil)
	ln, err := net.Listen("tcp", o.Service)
	if err != nil {
		return fmt.Errorf("demo service on %s: %w (is another demo running?)", o.Service, err)
	}
	// The quickstart names the service's usual address; point it at the real one.
	if err := writeQuickstart(dir, ln.Addr().String(), os.Getenv); err != nil {
		ln.Close()
		return err
	}
	srv := &http.Server{Handler: svc.Handler(), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }() // ends with ErrServerClosed when the demo stops
	defer srv.Close()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- app.Run(ctx, app.Options{ConfigPath: filepath.Join(dir, "assertd.yaml"), Listen: o.Listen, DataDir: data,
			Logger: o.Logger, Ready: ready, ReloadEvery: -1})
	}()
	var addr string
	select {
	case addr = <-ready:
	case err := <-done:
		return err
	}
	base := "http://" + addr
	go svc.Run(ctx, 50, base+"/ping/demo-job", 10*time.Second)

	fmt.Fprintf(o.Out, "assertd demo: the UI is on %s (data in %s)\n", base, data)
	fmt.Fprintf(o.Out, "the demo service is on http://%s; its faults: %s\n", ln.Addr(), strings.Join(Faults, ", "))
	if o.AutoSlow > 0 {
		fmt.Fprintf(o.Out, "story 1 starts by itself: in %s the demo service turns slow; watch assertd restart it.\n", o.AutoSlow)
	} else {
		fmt.Fprintf(o.Out, "story 1: assertd demo fault latency   (the demo service turns slow; watch assertd restart it)\n")
	}
	fmt.Fprintf(o.Out, "then try: assertd demo fault stuck-latency   (a restart cannot fix it: you get paged)\n")
	fmt.Fprintf(o.Out, "          assertd demo fault heartbeat       (its job stops pinging: uncertain, then paged)\n")
	if o.AutoSlow > 0 {
		time.AfterFunc(o.AutoSlow, func() {
			if ctx.Err() == nil {
				if err := svc.SetFault(FaultLatency, true); err != nil {
					fmt.Fprintf(o.Out, "demo service: %v\n", err)
					return
				}
				fmt.Fprintf(o.Out, "%s  demo service: latency fault on (requests take 200ms+)\n", time.Now().Format("15:04:05"))
			}
		})
	}
	go narrate(ctx, base, o.Out)
	return <-done
}

// writeQuickstart writes the quickstart set into dir, adding Slack and
// PagerDuty channels when their environment variables are set
// (SLACK_BOT_TOKEN with SLACK_CHANNEL, PAGERDUTY_ROUTING_KEY).
func writeQuickstart(dir, service string, getenv func(string) string) error {
	return fs.WalkDir(examples.Quickstart, "quickstart", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := examples.Quickstart.ReadFile(p)
		if err != nil {
			return err
		}
		if filepath.Base(p) == "assertd.yaml" {
			b = []byte(withChannels(string(b), getenv))
		}
		b = []byte(strings.ReplaceAll(string(b), DefaultService, service))
		return os.WriteFile(filepath.Join(dir, filepath.Base(p)), b, 0o644)
	})
}

// withChannels adds the real channels the environment names to the config.
func withChannels(cfg string, getenv func(string) string) string {
	var add, pages, info []string
	if getenv("SLACK_BOT_TOKEN") != "" && getenv("SLACK_CHANNEL") != "" {
		add = append(add, fmt.Sprintf("  - name: slack\n    slack: {token_env: SLACK_BOT_TOKEN, channel: %q}\n", getenv("SLACK_CHANNEL")))
		pages, info = append(pages, "slack"), append(info, "slack")
	}
	if getenv("PAGERDUTY_ROUTING_KEY") != "" {
		add = append(add, "  - name: pagerduty\n    pagerduty: {routing_key_env: PAGERDUTY_ROUTING_KEY}\n")
		pages = append(pages, "pagerduty")
	}
	if len(add) == 0 {
		return cfg
	}
	cfg = strings.Replace(cfg, "notifiers:\n", "notifiers:\n"+strings.Join(add, ""), 1)
	cfg = strings.Replace(cfg, "info: [console]", "info: ["+strings.Join(append([]string{"console"}, info...), ", ")+"]", 1)
	return strings.Replace(cfg, "notify: [console]", "notify: ["+strings.Join(append([]string{"console"}, pages...), ", ")+"]", 1)
}

// SetFault switches a fault of a running demo service.
func SetFault(ctx context.Context, service, name string, on bool) (State, error) {
	return post(ctx, fmt.Sprintf("http://%s/admin/fault/%s?on=%t", service, name, on))
}

// RestartService restarts a running demo service, as the remediation does.
func RestartService(ctx context.Context, service string) (State, error) {
	return post(ctx, fmt.Sprintf("http://%s/admin/restart", service))
}

func post(ctx context.Context, url string) (State, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, nil)
	if err != nil {
		return State{}, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return State{}, fmt.Errorf("is assertd demo running? %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var e struct{ Error string }
		_ = json.NewDecoder(resp.Body).Decode(&e) // without a message, the status says it
		if e.Error == "" {
			e.Error = resp.Status
		}
		return State{}, errors.New(e.Error)
	}
	var st State
	return st, json.NewDecoder(resp.Body).Decode(&st)
}
