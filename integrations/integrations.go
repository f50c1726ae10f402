// Package integrations lists the integrations configured in the settings
// (integrations.<name>: a generic HTTP endpoint, a Slack webhook, GitHub or
// Jira) with their secrets masked, and tests their connectivity with one
// real request.
package integrations

import (
	"errors"
	"fmt"
	"sort"

	"cliq/settings"
)

// ErrNotFound is returned for an integration name that the settings do not
// hold.
var ErrNotFound = errors.New("integration not found")

// Integration is one configured integration. Config is its settings object
// with secrets masked.
type Integration struct {
	Name   string       `json:"name"`
	Type   string       `json:"type"`
	Config settings.Map `json:"config"`
}

// List returns the integrations in m, sorted by name. Entries that are not
// objects are left out (settings validation rejects them).
func List(m settings.Map) []Integration {
	all := configs(m)
	names := make([]string, 0, len(all))
	for name := range all {
		names = append(names, name)
	}
	sort.Strings(names)
	out := make([]Integration, 0, len(names))
	for _, name := range names {
		out = append(out, describe(name, all[name]))
	}
	return out
}

// Get returns the integration called target. When no integration has that
// name but exactly one has that type ("github"), that one is returned. It
// returns an error wrapping ErrNotFound otherwise.
func Get(m settings.Map, target string) (Integration, error) {
	name, cfg, err := find(m, target)
	if err != nil {
		return Integration{}, err
	}
	return describe(name, cfg), nil
}

func describe(name string, cfg settings.Map) Integration {
	return Integration{
		Name:   name,
		Type:   settings.IntegrationType(name, cfg),
		Config: settings.Mask(cfg),
	}
}

func configs(m settings.Map) map[string]settings.Map {
	out := map[string]settings.Map{}
	v, _ := settings.Lookup(m, "integrations")
	all, _ := v.(settings.Map)
	for name, e := range all {
		if cfg, ok := e.(settings.Map); ok {
			out[name] = cfg
		}
	}
	return out
}

// find returns the name and the unmasked settings of target.
func find(m settings.Map, target string) (string, settings.Map, error) {
	all := configs(m)
	if cfg, ok := all[target]; ok {
		return target, cfg, nil
	}
	var matches []string
	for name, cfg := range all {
		if settings.IntegrationType(name, cfg) == target {
			matches = append(matches, name)
		}
	}
	if len(matches) == 1 {
		return matches[0], all[matches[0]], nil
	}
	names := make([]string, 0, len(all))
	for name := range all {
		names = append(names, name)
	}
	sort.Strings(names)
	if len(names) == 0 {
		return "", nil, fmt.Errorf("%w: %q: no integrations are configured; add one under integrations in the settings",
			ErrNotFound, target)
	}
	return "", nil, fmt.Errorf("%w: %q: configured integrations are %v", ErrNotFound, target, names)
}
