// Package examples holds runnable sets of assert, heartbeat and remediation
// files. The quickstart set is embedded so that `assertd demo` runs from any
// directory.
package examples

import "embed"

// Quickstart is the set `assertd demo` runs.
//
//go:embed quickstart/*.yaml
var Quickstart embed.FS
