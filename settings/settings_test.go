package settings

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// mustJSON decodes a JSON object the way settings files are decoded.
func mustJSON(tb testing.TB, s string) Map {
	tb.Helper()
	m := Map{}
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		tb.Fatalf("decode %s: %v", s, err)
	}
	return m
}

func TestMerge(t *testing.T) {
	cases := []struct {
		name, base, patch, want string
	}{
		{"EmptyPatch", `{"a":1}`, `{}`, `{"a":1}`},
		{"EmptyBase", `{}`, `{"a":{"b":1}}`, `{"a":{"b":1}}`},
		{"ScalarReplaces", `{"a":1}`, `{"a":2}`, `{"a":2}`},
		{"ObjectsMerge", `{"s":{"port":1,"host":"h"}}`, `{"s":{"port":2}}`, `{"s":{"port":2,"host":"h"}}`},
		{"DeepObjectsMerge", `{"a":{"b":{"c":1,"d":2}}}`, `{"a":{"b":{"d":3}}}`, `{"a":{"b":{"c":1,"d":3}}}`},
		{"NullBelowMissingKey", `{"s":1}`, `{"a":{"b":{"c":null}}}`, `{"s":1}`},
		{"NullBelowExistingKey", `{"a":{"x":1}}`, `{"a":{"b":{"c":null}}}`, `{"a":{"x":1}}`},
		{"EmptyObjectIsSet", `{}`, `{"a":{}}`, `{"a":{}}`},
		{"ArraysReplace", `{"o":["a","b"]}`, `{"o":["c"]}`, `{"o":["c"]}`},
		{"NullDeletes", `{"a":1,"b":2}`, `{"a":null}`, `{"b":2}`},
		{"NullDeletesNested", `{"a":{"b":1,"c":2}}`, `{"a":{"b":null}}`, `{"a":{"c":2}}`},
		{"NullOfMissingKey", `{"a":1}`, `{"z":null}`, `{"a":1}`},
		{"NullInsideNewObject", `{}`, `{"a":{"b":null,"c":1}}`, `{"a":{"c":1}}`},
		{"ObjectReplacesScalar", `{"a":1}`, `{"a":{"b":1}}`, `{"a":{"b":1}}`},
		{"ScalarReplacesObject", `{"a":{"b":1}}`, `{"a":"x"}`, `{"a":"x"}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			base := mustJSON(t, tc.base)
			before := mustJSON(t, tc.base)
			got := Merge(base, mustJSON(t, tc.patch))
			if want := mustJSON(t, tc.want); !reflect.DeepEqual(got, want) {
				t.Errorf("Merge = %v, want %v", got, want)
			}
			if !reflect.DeepEqual(base, before) {
				t.Errorf("Merge modified its base: %v, was %v", base, before)
			}
		})
	}
}

func TestResolve(t *testing.T) {
	home, project := t.TempDir(), t.TempDir()
	writeJSON(t, GlobalPath(home), `{"default_agent":"codex","server":{"port":4100,"cors_origins":["*"]}}`)
	writeJSON(t, ProjectPath(project), `{"default_agent":"exec","server":{"cors_origins":["http://a.test"]}}`)

	t.Run("ProjectWins", func(t *testing.T) {
		got, err := Resolve(home, project)
		if err != nil {
			t.Fatal(err)
		}
		want := mustJSON(t, `{"default_agent":"exec","server":{"port":4100,"cors_origins":["http://a.test"]}}`)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("Resolve = %v, want %v", got, want)
		}
	})
	t.Run("NoProject", func(t *testing.T) {
		got, err := Resolve(home, "")
		if err != nil {
			t.Fatal(err)
		}
		if DefaultAgent(got) != "codex" {
			t.Errorf("default_agent = %q, want codex", DefaultAgent(got))
		}
	})
	t.Run("ErrBadJSON", func(t *testing.T) {
		bad := t.TempDir()
		writeJSON(t, GlobalPath(bad), `{"a":`)
		if _, err := Resolve(bad, ""); err == nil || !strings.Contains(err.Error(), "invalid JSON") {
			t.Errorf("err = %v, want invalid JSON", err)
		}
	})
}

func writeJSON(tb testing.TB, path, content string) {
	tb.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		tb.Fatal(err)
	}
}
