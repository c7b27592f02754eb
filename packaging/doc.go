// Package packaging holds how assertd is installed outside of Go: the
// systemd unit with its environment file and sudo rules (systemd/), and
// the tests that check them and the repository's Dockerfile against what
// make dist builds. It has no code that assertd runs.
package packaging
