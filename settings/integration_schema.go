package settings

import (
	"fmt"
	"net/url"
	"strings"
)

// integrationFields lists the keys each integration type accepts besides
// "type". Every key is optional when the settings are written, so that an
// integration can be filled in one key at a time. Package integrations
// reports a missing url or secret when the integration is tested.
var integrationFields = map[string]map[string]*rule{
	"http": {
		"url":     {kind: kindString, check: checkHTTPURL},
		"method":  enum("GET", "HEAD", "POST"),
		"headers": mapOf(str()),
	},
	"slack": {
		"webhook_url": {kind: kindString, check: checkHTTPURL},
		"channel":     str(),
	},
	"github": {
		"token":         str(),
		"api_url":       {kind: kindString, check: checkHTTPURL},
		"base_branch":   str(),
		"remote":        str(),
		"branch_prefix": str(),
		"finalize_to":   str(),
		"pr_draft":      boolean(),
		"pr_reviewers":  {kind: kindStrings},
		"pr_labels":     {kind: kindStrings},
	},
	"jira": {
		"url":       {kind: kindString, check: checkHTTPURL},
		"email":     str(),
		"api_token": str(),
		"project":   str(),
	},
}

// IntegrationType returns the type of the integration called name: its
// "type" key, or the name itself when that is a known type (so that
// integrations.github needs no type key). It returns "" when neither
// applies.
func IntegrationType(name string, cfg Map) string {
	if t, ok := cfg["type"].(string); ok {
		return t
	}
	if contains(IntegrationTypes, name) {
		return name
	}
	return ""
}

// validateIntegration checks integrations.<name> against the fields of its
// type.
func validateIntegration(path string, v any) error {
	cfg := v.(Map)
	name := lastKey(path)
	if t, ok := cfg["type"]; ok {
		if msg := checkKind(enum(IntegrationTypes...), t, false); msg != "" {
			return &ValidationError{Path: path + ".type", Message: msg}
		}
	}
	typ := IntegrationType(name, cfg)
	if typ == "" {
		return &ValidationError{Path: path + ".type", Message: "missing: set it to one of " +
			strings.Join(IntegrationTypes, ", ")}
	}
	fields := map[string]*rule{"type": str()}
	for k, r := range integrationFields[typ] {
		fields[k] = r
	}
	return validate(obj(fields), path, cfg)
}

func checkHTTPURL(v any) string {
	s := v.(string)
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Sprintf("%s is not an http:// or https:// URL", describeURL(s))
	}
	return ""
}

// describeURL names the scheme of s for an error message, and never the
// rest: a webhook URL carries its secret in the path.
func describeURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.Scheme == "" {
		return "the value"
	}
	return fmt.Sprintf("the URL with scheme %q", u.Scheme)
}
