package assertd

import (
	"runtime"
	"runtime/debug"
	"testing"
)

func TestBuildInfo(t *testing.T) {
	recorded := &debug.BuildInfo{Main: debug.Module{Version: "v0.3.0"},
		Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "abc123"}, {Key: "vcs.modified", Value: "false"}}}
	dirty := &debug.BuildInfo{Main: debug.Module{Version: "(devel)"},
		Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "abc123"}, {Key: "vcs.modified", Value: "true"}}}
	for _, tc := range []struct {
		name              string
		version, revision string
		bi                *debug.BuildInfo
		want              BuildInfo
	}{
		{"stamped", "v1.2.3", "deadbeef", recorded, BuildInfo{"v1.2.3", "deadbeef", runtime.Version()}},
		{"recorded by the toolchain", "", "", recorded, BuildInfo{"v0.3.0", "abc123", runtime.Version()}},
		{"a dirty tree", "", "", dirty, BuildInfo{"devel", "abc123-dirty", runtime.Version()}},
		{"nothing known", "", "", nil, BuildInfo{"devel", "unknown", runtime.Version()}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := buildInfo(tc.version, tc.revision, tc.bi); got != tc.want {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}
