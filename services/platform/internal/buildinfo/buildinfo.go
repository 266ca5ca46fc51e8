// Package buildinfo carries the version stamped in at link time. The
// binary's package main receives the stamps (-X main.version=... etc., see
// cmd/platform) and calls Set; stamping this package directly also works:
//
//	-X platform/internal/buildinfo.version=v1.2.3
//	-X platform/internal/buildinfo.commit=abc123
//	-X platform/internal/buildinfo.buildTime=2026-01-01T00:00:00Z
package buildinfo

var (
	version   string
	commit    string
	buildTime string
)

// Set overrides the stamps with the non-empty values given.
func Set(v, c, t string) {
	if v != "" {
		version = v
	}
	if c != "" {
		commit = c
	}
	if t != "" {
		buildTime = t
	}
}

// Info is the build identity of the binary.
type Info struct {
	Version   string `json:"version"`
	Commit    string `json:"commit"`
	BuildTime string `json:"build_time"`
}

// Get returns the stamped values, "dev"/"unknown" when not stamped.
func Get() Info {
	i := Info{Version: version, Commit: commit, BuildTime: buildTime}
	if i.Version == "" {
		i.Version = "dev"
	}
	if i.Commit == "" {
		i.Commit = "unknown"
	}
	if i.BuildTime == "" {
		i.BuildTime = "unknown"
	}
	return i
}
