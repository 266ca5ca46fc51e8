package config

import (
	"strings"

	"platform/internal/contracts"
)

var (
	ruleMetricRE  = contracts.MustPattern(contracts.ScoreRequest, "/properties/metric/pattern")
	ruleCommandRE = contracts.MustPattern(contracts.CommandRequest, "/properties/name/pattern")
)

// rules parses "metric:command[,metric:command...]"; "none" or "-" means no
// rule (anomalies are recorded, no command is issued).
func (l *loader) rules(key, def string) map[string]string {
	v, ok := l.raw(key)
	if !ok {
		v = def
	}
	out := map[string]string{}
	if v == "none" || v == "-" {
		return out
	}
	for _, pair := range strings.Split(v, ",") {
		metric, cmd, found := strings.Cut(strings.TrimSpace(pair), ":")
		metric, cmd = strings.TrimSpace(metric), strings.TrimSpace(cmd)
		if !found || !ruleMetricRE.MatchString(metric) || !ruleCommandRE.MatchString(cmd) {
			l.fail(key, v, "use comma-separated metric:command pairs such as temperature:cooldown (metric [A-Za-z0-9_.-], command starting with a letter), or none")
			return map[string]string{}
		}
		if _, dup := out[metric]; dup {
			l.fail(key, v, "give each metric one command only in the metric:command pairs ("+metric+" appears twice)")
			return map[string]string{}
		}
		out[metric] = cmd
	}
	return out
}
