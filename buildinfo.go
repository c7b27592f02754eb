package assertd

import (
	"runtime"
	"runtime/debug"
)

// Version and Revision name the build. make build stamps them:
//
//	go build -ldflags "-X github.com/assertd/assertd.Version=v1.2.3 -X github.com/assertd/assertd.Revision=0123abc…" ./cmd/assertd
//
// Unstamped, Build reads them from what the Go toolchain recorded: the
// module's version and the VCS revision (with -dirty when the tree had
// changes).
var (
	Version  = ""
	Revision = ""
)

// BuildInfo describes the running binary.
type BuildInfo struct {
	Version   string `json:"version"`
	Revision  string `json:"revision"`
	GoVersion string `json:"goversion"`
}

// Build returns the running binary's build information: the stamped
// Version and Revision, else those the toolchain recorded, else "devel" and
// "unknown".
func Build() BuildInfo {
	var bi *debug.BuildInfo
	if b, ok := debug.ReadBuildInfo(); ok {
		bi = b
	}
	return buildInfo(Version, Revision, bi)
}

func buildInfo(version, revision string, bi *debug.BuildInfo) BuildInfo {
	out := BuildInfo{Version: version, Revision: revision, GoVersion: runtime.Version()}
	if bi != nil {
		if out.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			out.Version = bi.Main.Version
		}
		if out.Revision == "" {
			var rev, modified string
			for _, s := range bi.Settings {
				switch s.Key {
				case "vcs.revision":
					rev = s.Value
				case "vcs.modified":
					modified = s.Value
				}
			}
			if rev != "" && modified == "true" {
				rev += "-dirty"
			}
			out.Revision = rev
		}
	}
	if out.Version == "" {
		out.Version = "devel"
	}
	if out.Revision == "" {
		out.Revision = "unknown"
	}
	return out
}
