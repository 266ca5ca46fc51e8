package config

import (
	"fmt"
	"sort"
	"strings"

	"platform/internal/contracts"
)

var (
	ruleMetricRE  = contracts.MustPattern(contracts.ScoreRequest, "/properties/metric/pattern")
	ruleCommandRE = contracts.MustPattern(contracts.CommandRequest, "/properties/name/pattern")
)

// Rules maps a metric to the command issued for its anomalies. As text
// (ANOMALY_COMMAND_RULES) it is "metric:command[,metric:command...]", with
// metric and command following the contracts' patterns; "none" or "-"
// means no rule (anomalies are recorded, no command is issued).
type Rules map[string]string

// UnmarshalText parses the text form; its error is worded as the fix.
func (r *Rules) UnmarshalText(text []byte) error {
	v := strings.TrimSpace(string(text))
	out := Rules{}
	if v != "none" && v != "-" {
		for _, pair := range strings.Split(v, ",") {
			metric, cmd, found := strings.Cut(strings.TrimSpace(pair), ":")
			metric, cmd = strings.TrimSpace(metric), strings.TrimSpace(cmd)
			if !found || !ruleMetricRE.MatchString(metric) || !ruleCommandRE.MatchString(cmd) {
				return fmt.Errorf("use comma-separated metric:command pairs such as temperature:cooldown (metric matching %s, command matching %s), or none", ruleMetricRE, ruleCommandRE)
			}
			if _, dup := out[metric]; dup {
				return fmt.Errorf("give each metric one command only in the metric:command pairs (%s appears twice)", metric)
			}
			out[metric] = cmd
		}
	}
	*r = out
	return nil
}

// String renders the rules as ANOMALY_COMMAND_RULES reads them, sorted.
func (r Rules) String() string {
	if len(r) == 0 {
		return "none"
	}
	parts := make([]string, 0, len(r))
	for m, c := range r {
		parts = append(parts, m+":"+c)
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}
