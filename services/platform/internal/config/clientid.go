package config

import (
	"fmt"
	"strings"
	"unicode"
)

// AutoClientID (MQTT_CLIENT_ID's default) asks for InstanceClientID.
const AutoClientID = "auto"

// InstanceClientID is the MQTT client id of the instance serving ingestion
// on port of host: stable across its restarts (its persistent session
// keeps what arrives while it is down) and distinct for two instances on
// one broker (they cannot share host and port), so neither kicks the
// other off.
func InstanceClientID(host string, port int) string {
	clean := strings.Map(func(r rune) rune {
		if r < 128 && (r == '-' || r == '_' || r == '.' || unicode.IsLetter(r) || unicode.IsDigit(r)) {
			return r
		}
		return '-'
	}, host)
	if clean == "" {
		clean = "localhost"
	}
	return fmt.Sprintf("platform-%.40s-%d", clean, port)
}
