// Package bench is assertd's performance harness. Every figure it
// reports is a ratio against a baseline measured in the same process and the
// same run, so numbers from different machines can be compared by shape:
//
//   - Evaluation cycle: 10,000 asserts over the embedded TSDB (synthetic,
//     seeded data) against Prometheus' rule manager (rules.Group.Eval and
//     AlertingRule.Eval) and the raw promql.Engine running the same queries,
//     sequentially and with one worker per core.
//   - Heartbeat pings: a loopback HTTP load sent by wrk (an external
//     process) and by the harness's own client (keep-alive connections,
//     bounded in time) against /ping/{name} with durable state on SQLite
//     and PostgreSQL, against a bare net/http handler that answers 200.
//   - Reaction latency: the confirming evaluation to Remediator.Start, and a
//     failed remediation to the page received by a fake PagerDuty server.
//   - Memory per assert instance at 10k and 100k instances.
//   - Restart: engine.New with 100k instances in the store.
//   - Scrape: GET /metrics of assertd as app.New builds it with 1M
//     decisions, 100k runs and 100k messages in its SQLite store, against
//     the same with an empty store.
//   - Event streams: engine cycles of 100k instances with 50 open
//     /api/v1/events streams, against the same with none.
//   - Realistic workload: asserts sharing their queries and differing in
//     thresholds (severities, an up guard) against rules.Group.Eval on the
//     same rules, with the queries sent per cycle.
//   - A million instances: memory, restart to ready and steady cycles.
//   - Silences (BenchmarkSilences only): matching 10k instances against
//     20 regular-expression silences.
//
// The Benchmark functions run one measurement each (benchstat reads their
// output). TestTable runs them all once and prints the table; it is built
// only with -tags bench so that make test stays fast: run it with make bench.
//
// Loads target 127.0.0.1 only, are bounded in count and duration, and stop
// by themselves.
package bench
