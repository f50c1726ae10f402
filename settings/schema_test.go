package settings

import (
	"errors"
	"strings"
	"testing"
)

func TestValidate(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		m := mustJSON(t, `{
			"id_prefix": "acme-1", "default_agent": "claude-code", "headless": true,
			"strict_input_validation": false,
			"agents": {"claude-code": {"command": ["claude", "-p"], "api_key": "sk-123", "model": "m",
				"env": {"ANTHROPIC_API_KEY": "x"}}},
			"server": {"port": 4100, "host": "0.0.0.0",
				"cors_origins": ["*", "https://dash.example.com", "http://localhost:5173"],
				"a2a": {"agent_type": "cliq_pipeline", "meshes": [{"name": "m"}]}},
			"logging": {"server_level": "trace", "core_level": "warn", "max_size_mb": 1, "max_files": 100},
			"database": {"url": "postgres://u:p@127.0.0.1:5432/db"},
			"teams": {"max_depth": 10},
			"integrations": {
				"hook": {"type": "http", "url": "http://127.0.0.1:1/x", "method": "HEAD", "headers": {"X-A": "b"}},
				"slack": {"webhook_url": "https://hooks.slack.test/T/B/C"},
				"gh": {"type": "github", "token": "t", "api_url": "http://127.0.0.1:2", "pr_labels": ["x"]},
				"jira": {"url": "https://x.atlassian.net", "email": "a@b.c", "api_token": "t"}},
			"notifications": {"on_complete": ["slack"]},
			"hub": {"registry_url": "https://cliqhub.io"}, "docker": {"enabled": false}
		}`)
		if err := Validate(m); err != nil {
			t.Fatalf("Validate: %v", err)
		}
	})

	cases := []struct {
		name, doc, path, message string
	}{
		{"UnknownTopKey", `{"sever":{}}`, "sever", "unknown key"},
		{"UnknownNestedKey", `{"server":{"prot":1}}`, "server.prot", "known keys here: a2a, cors_origins, host, port"},
		{"PortString", `{"server":{"port":"x"}}`, "server.port", `must be an integer from 0 to 65535, got "x"`},
		{"PortRange", `{"server":{"port":70000}}`, "server.port", "got 70000"},
		{"PortFraction", `{"server":{"port":80.5}}`, "server.port", "must be an integer"},
		{"HostEmpty", `{"server":{"host":""}}`, "server.host", "not a host"},
		{"OriginsNotArray", `{"server":{"cors_origins":"*"}}`, "server.cors_origins", "must be an array of strings"},
		{"OriginsItemType", `{"server":{"cors_origins":[1]}}`, "server.cors_origins", "item 0 is 1"},
		{"OriginWithPath", `{"server":{"cors_origins":["https://a.test/x"]}}`, "server.cors_origins", "not an origin"},
		{"OriginNoScheme", `{"server":{"cors_origins":["a.test"]}}`, "server.cors_origins", "not an origin"},
		{"LevelUnknown", `{"logging":{"server_level":"verbose"}}`, "logging.server_level", "must be one of error, warn, info, debug, trace"},
		{"MaxSizeZero", `{"logging":{"max_size_mb":0}}`, "logging.max_size_mb", "from 1 to 1024"},
		{"MaxFilesHigh", `{"logging":{"max_files":101}}`, "logging.max_files", "from 1 to 100"},
		{"HeadlessString", `{"headless":"yes"}`, "headless", "must be true or false"},
		{"IDPrefixUpper", `{"id_prefix":"Acme"}`, "id_prefix", "lowercase"},
		{"DefaultAgentSpace", `{"default_agent":"my agent"}`, "default_agent", "not an agent name"},
		{"AgentNotObject", `{"agents":{"x":"claude"}}`, "agents.x", "must be an object"},
		{"AgentCommandEmpty", `{"agents":{"x":{"command":[]}}}`, "agents.x.command", "must name the program"},
		{"AgentCommandString", `{"agents":{"x":{"command":"claude -p"}}}`, "agents.x.command", "array of strings"},
		{"AgentUnknownField", `{"agents":{"x":{"cmd":["a"]}}}`, "agents.x.cmd", "unknown key"},
		{"AgentEnvNumber", `{"agents":{"x":{"env":{"A":1}}}}`, "agents.x.env.A", "must be a string"},
		{"DatabaseMySQL", `{"database":{"url":"mysql://x"}}`, "database.url", "postgres://"},
		{"MaxDepth", `{"teams":{"max_depth":11}}`, "teams.max_depth", "from 1 to 10"},
		{"IntegrationNoType", `{"integrations":{"x":{"url":"http://a.test"}}}`, "integrations.x.type", "missing"},
		{"IntegrationBadType", `{"integrations":{"x":{"type":"ftp"}}}`, "integrations.x.type", "must be one of http, slack, github, jira"},
		{"IntegrationUnknownField", `{"integrations":{"x":{"type":"slack","url":"http://a.test"}}}`, "integrations.x.url", "unknown key"},
		{"IntegrationBadURL", `{"integrations":{"x":{"type":"http","url":"ftp://a.test"}}}`, "integrations.x.url", "not an http:// or https:// URL"},
		{"IntegrationBadMethod", `{"integrations":{"x":{"type":"http","method":"DELETE"}}}`, "integrations.x.method", "GET, HEAD, POST"},
		{"NotificationsNotObject", `{"notifications":[]}`, "notifications", "must be an object"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := Validate(mustJSON(t, tc.doc))
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("Validate(%s) = %v, want a *ValidationError", tc.doc, err)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error %v does not wrap ErrInvalid", err)
			}
			if ve.Path != tc.path {
				t.Errorf("Path = %q, want %q", ve.Path, tc.path)
			}
			if !strings.Contains(ve.Message, tc.message) {
				t.Errorf("Message = %q, want it to contain %q", ve.Message, tc.message)
			}
		})
	}

	t.Run("SecretNotEchoed", func(t *testing.T) {
		for _, doc := range []string{
			`{"agents":{"x":{"api_key":["sk-topsecret"]}}}`,
			`{"integrations":{"s":{"type":"slack","webhook_url":"ftp://sk-topsecret"}}}`,
			`{"database":{"url":"mysql://u:sk-topsecret@h/db"}}`,
		} {
			err := Validate(mustJSON(t, doc))
			if err == nil {
				t.Fatalf("Validate(%s) = nil, want an error", doc)
			}
			if strings.Contains(err.Error(), "sk-topsecret") {
				t.Errorf("error %q shows the secret", err)
			}
		}
	})
}
