package server

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"cliq/auth"
	"cliq/store"
	"cliq/store/storetest"
	"cliq/teams"
)

// newTeamServer returns a server whose CLIQ_HOME is a new temporary
// directory, with that directory.
func newTeamServer(tb testing.TB) (*Server, *store.DB, string) {
	tb.Helper()
	home := tb.TempDir()
	s, db := newTestServer(tb, func(cfg *Config) { cfg.Home = home })
	return s, db, home
}

// postJSON sends body, encoded as JSON, to path with the test token.
func postJSON(tb testing.TB, s *Server, path string, body any) *httptest.ResponseRecorder {
	tb.Helper()
	data, err := json.Marshal(body)
	if err != nil {
		tb.Fatal(err)
	}
	return serve(tb, s, http.MethodPost, path, testToken, string(data))
}

// mustTeamError checks that rec is an error response with the wanted
// status and code, and that its message shows no directory of home.
func mustTeamError(tb testing.TB, rec *httptest.ResponseRecorder, home string, status int, code string) string {
	tb.Helper()
	mustStatus(tb, rec, status)
	got, msg := errorCode(tb, rec)
	if got != code {
		tb.Errorf("code = %q, want %q (message %q)", got, code, msg)
	}
	if home != "" && strings.Contains(msg, home) {
		tb.Errorf("message %q shows the directory %s", msg, home)
	}
	return msg
}

// writeHomeTeam writes a team directly into home/teams/<name>, bypassing
// the checks of package teams, and returns its directory.
func writeHomeTeam(tb testing.TB, home, name, yml string, roles map[string]string) string {
	tb.Helper()
	dir := filepath.Join(home, "teams", filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Join(dir, "roles"), 0o755); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "team.yml"), []byte(yml), 0o644); err != nil {
		tb.Fatal(err)
	}
	for role, text := range roles {
		if err := os.WriteFile(filepath.Join(dir, "roles", role+".md"), []byte(text), 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	return dir
}

// cycleTeam is a team.yml whose only phase, "sub", runs the team ref.
func cycleTeam(name, ref string) string {
	return "name: \"" + name + "\"\nworkflow:\n  phases:\n" +
		"    - name: sub\n      type: team\n      team: \"" + ref + "\"\n"
}

// brokenTeam is a team.yml that does not validate: its gate has
// max_iterations 0.
const brokenTeam = `name: "@local/broken"
workflow:
  phases:
    - name: build
      depends_on: [nope]
      agent: exec
      commands: [{name: ok, run: "true"}]
    - name: check
      type: gate
      depends_on: [build]
      max_iterations: 0
      commands: [{name: t, run: "true"}]
`

// findSummary returns the team called name in list.
func findSummary(list []teams.Summary, name string) (teams.Summary, bool) {
	i := slices.IndexFunc(list, func(s teams.Summary) bool { return s.Name == name })
	if i < 0 {
		return teams.Summary{}, false
	}
	return list[i], true
}

func TestServer_ListTeams(t *testing.T) {
	s, db, home := newTeamServer(t)
	project := newProject(t, db, "demo", "", nil)
	writeHomeTeam(t, home, "@acme/broken", strings.Replace(brokenTeam, "@local/broken", "@acme/broken", 1), nil)

	t.Run("OK", func(t *testing.T) {
		rec := postJSON(t, s, "/teams/list/", nil)
		mustStatus(t, rec, http.StatusOK)
		if strings.Contains(rec.Body.String(), home) {
			t.Errorf("body %s shows CLIQ_HOME", rec.Body.String())
		}
		var got struct{ Teams []teams.Summary }
		decodeBody(t, rec.Body, &got)
		feature, ok := findSummary(got.Teams, "@cliq/feature")
		if !ok {
			t.Fatalf("teams = %+v, want @cliq/feature", got.Teams)
		}
		if !feature.Builtin || feature.Scope != "cliq" || feature.PhaseCount != 3 || feature.Version != "1.0.0" {
			t.Errorf("@cliq/feature = %+v, want built-in, scope cliq, 3 phases, version 1.0.0", feature)
		}
		if feature.Description == "" {
			t.Errorf("@cliq/feature has no description")
		}
		broken, ok := findSummary(got.Teams, "@acme/broken")
		if !ok || broken.Builtin || broken.Error == "" {
			t.Errorf("@acme/broken = %+v (found %v), want an installed team with an error", broken, ok)
		}
		if _, ok := findSummary(got.Teams, "@testdata/demo"); ok {
			t.Errorf("teams = %+v, want no project team without instance_id", got.Teams)
		}
	})
	t.Run("WithInstance", func(t *testing.T) {
		rec := postJSON(t, s, "/teams/list", map[string]string{"instance_id": project.ID})
		mustStatus(t, rec, http.StatusOK)
		if strings.Contains(rec.Body.String(), project.ProjectDir) {
			t.Errorf("body %s shows the project directory", rec.Body.String())
		}
		var got struct{ Teams []teams.Summary }
		decodeBody(t, rec.Body, &got)
		demo, ok := findSummary(got.Teams, "@testdata/demo")
		if !ok || demo.Scope != teams.ProjectScope || demo.PhaseCount != 5 {
			t.Errorf("@testdata/demo = %+v (found %v), want the project's team with 5 phases", demo, ok)
		}
	})
	t.Run("UnknownInstance", func(t *testing.T) {
		rec := postJSON(t, s, "/teams/list/", map[string]string{"instance_id": "cliq-000000"})
		mustTeamError(t, rec, home, http.StatusNotFound, CodeNotFound)
	})
	t.Run("InstanceWithoutProject", func(t *testing.T) {
		gone := store.Instance{ID: "cliq-abcdef", Name: "gone", ProjectDir: filepath.Join(t.TempDir(), "gone")}
		if err := db.PutInstance(t.Context(), gone); err != nil {
			t.Fatal(err)
		}
		rec := postJSON(t, s, "/teams/list/", map[string]string{"instance_id": gone.ID})
		mustTeamError(t, rec, "", http.StatusConflict, CodeConflict)
	})
	t.Run("UnknownField", func(t *testing.T) {
		rec := postJSON(t, s, "/teams/list/", map[string]string{"scope": "local"})
		mustTeamError(t, rec, home, http.StatusBadRequest, CodeInvalidRequest)
	})
}

func TestServer_GetTeam(t *testing.T) {
	s, db, home := newTeamServer(t)
	project := newProject(t, db, "demo", "", nil)

	t.Run("Builtin", func(t *testing.T) {
		rec := postJSON(t, s, "/teams/get/", map[string]string{"name": "@cliq/feature"})
		mustStatus(t, rec, http.StatusOK)
		var got teams.Detail
		decodeBody(t, rec.Body, &got)
		if got.Name != "@cliq/feature" || !got.Builtin || len(got.Phases) != 3 {
			t.Fatalf("get = %+v, want @cliq/feature with 3 phases", got)
		}
		architect, developer, gate := got.Phases[0], got.Phases[1], got.Phases[2]
		if architect.Type != "standard" || architect.Role != "architect" || architect.RoleText == "" {
			t.Errorf("architect = %+v, want a standard phase with its role text", architect)
		}
		if !slices.Equal(developer.DependsOn, []string{"architect"}) {
			t.Errorf("developer depends_on = %v, want [architect]", developer.DependsOn)
		}
		if gate.Type != "gate" || gate.MaxIterations != 3 || gate.RouteTo != "developer" {
			t.Errorf("tests gate = %+v, want a gate with max_iterations 3 routing to developer", gate)
		}
		if len(gate.Commands) != 1 || gate.Commands[0].Run != "$(inputs.test_command)" {
			t.Errorf("tests gate commands = %+v, want the test command", gate.Commands)
		}
	})
	t.Run("BareName", func(t *testing.T) {
		rec := postJSON(t, s, "/teams/get", map[string]string{"name": "hello-world"})
		mustStatus(t, rec, http.StatusOK)
		var got teams.Detail
		decodeBody(t, rec.Body, &got)
		if got.Name != "@cliq/hello-world" {
			t.Errorf("name = %q, want @cliq/hello-world", got.Name)
		}
	})
	t.Run("Project", func(t *testing.T) {
		rec := postJSON(t, s, "/teams/get/", map[string]string{"name": "@project", "instance_id": project.ID})
		mustStatus(t, rec, http.StatusOK)
		var got teams.Detail
		decodeBody(t, rec.Body, &got)
		if got.Name != "@testdata/demo" || got.Scope != teams.ProjectScope || len(got.Phases) != 5 {
			t.Errorf("get = %+v, want the project's @testdata/demo", got.Summary)
		}
	})
	t.Run("ProjectWithoutInstance", func(t *testing.T) {
		rec := postJSON(t, s, "/teams/get/", map[string]string{"name": "@project"})
		msg := mustTeamError(t, rec, home, http.StatusBadRequest, CodeInvalidRequest)
		if !strings.Contains(msg, "instance_id") {
			t.Errorf("message %q does not mention instance_id", msg)
		}
	})
	t.Run("ProjectWithoutTeam", func(t *testing.T) {
		empty := newProject(t, db, "", "", nil)
		rec := postJSON(t, s, "/teams/get/", map[string]string{"name": "@project", "instance_id": empty.ID})
		mustTeamError(t, rec, empty.ProjectDir, http.StatusNotFound, CodeNotFound)
	})
	t.Run("MissingName", func(t *testing.T) {
		rec := postJSON(t, s, "/teams/get/", nil)
		mustTeamError(t, rec, home, http.StatusBadRequest, CodeInvalidRequest)
	})
	t.Run("NotFound", func(t *testing.T) {
		rec := postJSON(t, s, "/teams/get/", map[string]string{"name": "@local/nope"})
		msg := mustTeamError(t, rec, home, http.StatusNotFound, CodeNotFound)
		if !strings.Contains(msg, "@local/nope") {
			t.Errorf("message %q does not name the team", msg)
		}
	})
	t.Run("Ambiguous", func(t *testing.T) {
		writeHomeTeam(t, home, "@a/twin", cycleTeam("@a/twin", "@b/twin"), nil)
		writeHomeTeam(t, home, "@b/twin", cycleTeam("@b/twin", "@a/twin"), nil)
		rec := postJSON(t, s, "/teams/get/", map[string]string{"name": "twin"})
		mustTeamError(t, rec, home, http.StatusBadRequest, CodeInvalidRequest)
	})
}

func TestServer_CreateTeam(t *testing.T) {
	s, _, home := newTeamServer(t)

	t.Run("OK", func(t *testing.T) {
		rec := postJSON(t, s, "/teams/create/", map[string]string{"name": "blog"})
		mustStatus(t, rec, http.StatusCreated)
		var got teams.Summary
		decodeBody(t, rec.Body, &got)
		if got.Name != "@local/blog" || got.Scope != "local" || got.Builtin || got.PhaseCount != 1 {
			t.Errorf("create = %+v, want @local/blog with one phase", got)
		}
		if _, err := os.Stat(filepath.Join(home, "teams", "@local", "blog", "team.yml")); err != nil {
			t.Errorf("team.yml of the new team: %v", err)
		}

		var res teams.ValidationResult
		rec = postJSON(t, s, "/teams/validate/", map[string]string{"name": "@local/blog"})
		mustStatus(t, rec, http.StatusOK)
		decodeBody(t, rec.Body, &res)
		if !res.Valid {
			t.Errorf("validate of the new team = %+v, want valid", res)
		}
	})
	t.Run("Scoped", func(t *testing.T) {
		rec := postJSON(t, s, "/teams/create", map[string]string{"name": "@acme/deploy"})
		mustStatus(t, rec, http.StatusCreated)
	})
	t.Run("Exists", func(t *testing.T) {
		rec := postJSON(t, s, "/teams/create/", map[string]string{"name": "@local/blog"})
		mustTeamError(t, rec, home, http.StatusConflict, CodeConflict)
	})
	t.Run("ReservedScope", func(t *testing.T) {
		rec := postJSON(t, s, "/teams/create/", map[string]string{"name": "@cliq/mine"})
		mustTeamError(t, rec, home, http.StatusBadRequest, CodeInvalidRequest)
	})
	t.Run("MissingName", func(t *testing.T) {
		rec := postJSON(t, s, "/teams/create/", map[string]string{"name": "  "})
		mustTeamError(t, rec, home, http.StatusBadRequest, CodeInvalidRequest)
	})
	t.Run("UnknownField", func(t *testing.T) {
		rec := postJSON(t, s, "/teams/create/", map[string]string{"name": "x", "instance_id": "cliq-000000"})
		mustTeamError(t, rec, home, http.StatusBadRequest, CodeInvalidRequest)
	})
}

func TestServer_CopyTeam(t *testing.T) {
	s, db, home := newTeamServer(t)
	project := newProject(t, db, "demo", "", nil)
	writeHomeTeam(t, home, "@local/broken", brokenTeam, nil)

	t.Run("Builtin", func(t *testing.T) {
		rec := postJSON(t, s, "/teams/copy/", map[string]string{"source": "@cliq/feature", "name": "my-feature"})
		mustStatus(t, rec, http.StatusCreated)
		var got teams.Summary
		decodeBody(t, rec.Body, &got)
		if got.Name != "@local/my-feature" || got.Builtin || got.PhaseCount != 3 {
			t.Errorf("copy = %+v, want @local/my-feature with 3 phases", got)
		}
		role := filepath.Join(home, "teams", "@local", "my-feature", "roles", "architect.md")
		if _, err := os.Stat(role); err != nil {
			t.Errorf("role file of the copy: %v", err)
		}
	})
	t.Run("Project", func(t *testing.T) {
		rec := postJSON(t, s, "/teams/copy", map[string]string{
			"source": "@project", "name": "@acme/from-project", "instance_id": project.ID})
		mustStatus(t, rec, http.StatusCreated)
		var got teams.Summary
		decodeBody(t, rec.Body, &got)
		if got.Name != "@acme/from-project" || got.PhaseCount != 5 {
			t.Errorf("copy = %+v, want @acme/from-project with 5 phases", got)
		}
	})
	t.Run("SourceNotFound", func(t *testing.T) {
		rec := postJSON(t, s, "/teams/copy/", map[string]string{"source": "@local/nope", "name": "x"})
		mustTeamError(t, rec, home, http.StatusNotFound, CodeNotFound)
	})
	t.Run("InvalidSource", func(t *testing.T) {
		rec := postJSON(t, s, "/teams/copy/", map[string]string{"source": "@local/broken", "name": "fixed"})
		mustTeamError(t, rec, home, http.StatusBadRequest, CodeInvalidRequest)
		if _, err := os.Stat(filepath.Join(home, "teams", "@local", "fixed")); err == nil {
			t.Errorf("an invalid team was copied to @local/fixed")
		}
	})
	t.Run("Exists", func(t *testing.T) {
		rec := postJSON(t, s, "/teams/copy/", map[string]string{"source": "@cliq/feature", "name": "my-feature"})
		mustTeamError(t, rec, home, http.StatusConflict, CodeConflict)
	})
	t.Run("ReservedScope", func(t *testing.T) {
		rec := postJSON(t, s, "/teams/copy/", map[string]string{"source": "@cliq/feature", "name": "@cliq/x"})
		mustTeamError(t, rec, home, http.StatusBadRequest, CodeInvalidRequest)
	})
	t.Run("MissingSource", func(t *testing.T) {
		rec := postJSON(t, s, "/teams/copy/", map[string]string{"name": "x"})
		msg := mustTeamError(t, rec, home, http.StatusBadRequest, CodeInvalidRequest)
		if !strings.Contains(msg, "source") {
			t.Errorf("message %q does not name the field source", msg)
		}
	})
	t.Run("MissingName", func(t *testing.T) {
		rec := postJSON(t, s, "/teams/copy/", map[string]string{"source": "@cliq/feature"})
		mustTeamError(t, rec, home, http.StatusBadRequest, CodeInvalidRequest)
	})
}

func TestServer_DeleteTeam(t *testing.T) {
	s, _, home := newTeamServer(t)
	mustStatus(t, postJSON(t, s, "/teams/create/", map[string]string{"name": "gone"}), http.StatusCreated)

	t.Run("OK", func(t *testing.T) {
		rec := postJSON(t, s, "/teams/delete/", map[string]string{"name": "gone"})
		mustStatus(t, rec, http.StatusOK)
		var got struct {
			Name    string
			Deleted bool
		}
		decodeBody(t, rec.Body, &got)
		if got.Name != "@local/gone" || !got.Deleted {
			t.Errorf("delete = %+v, want @local/gone deleted", got)
		}
		rec = postJSON(t, s, "/teams/get/", map[string]string{"name": "@local/gone"})
		mustTeamError(t, rec, home, http.StatusNotFound, CodeNotFound)
	})
	t.Run("Again", func(t *testing.T) {
		rec := postJSON(t, s, "/teams/delete", map[string]string{"name": "@local/gone"})
		mustTeamError(t, rec, home, http.StatusNotFound, CodeNotFound)
	})
	t.Run("Builtin", func(t *testing.T) {
		rec := postJSON(t, s, "/teams/delete/", map[string]string{"name": "@cliq/hello-world"})
		msg := mustTeamError(t, rec, home, http.StatusConflict, CodeConflict)
		if !strings.Contains(msg, "@cliq/hello-world") {
			t.Errorf("message %q does not name the team", msg)
		}
		rec = postJSON(t, s, "/teams/get/", map[string]string{"name": "@cliq/hello-world"})
		mustStatus(t, rec, http.StatusOK)
	})
	t.Run("MissingName", func(t *testing.T) {
		rec := postJSON(t, s, "/teams/delete/", nil)
		mustTeamError(t, rec, home, http.StatusBadRequest, CodeInvalidRequest)
	})
}

func TestServer_ValidateTeam(t *testing.T) {
	s, db, home := newTeamServer(t)
	writeHomeTeam(t, home, "@local/broken", brokenTeam, nil)
	writeHomeTeam(t, home, "@t/a", cycleTeam("@t/a", "@t/b"), map[string]string{"sub": "Run b.\n"})
	writeHomeTeam(t, home, "@t/b", cycleTeam("@t/b", "@t/a"), map[string]string{"sub": "Run a.\n"})
	project := newProject(t, db, "nested-parent", "", nil)

	validate := func(t *testing.T, body map[string]string) teams.ValidationResult {
		t.Helper()
		rec := postJSON(t, s, "/teams/validate/", body)
		mustStatus(t, rec, http.StatusOK)
		if strings.Contains(rec.Body.String(), home) {
			t.Errorf("body %s shows CLIQ_HOME", rec.Body.String())
		}
		var res teams.ValidationResult
		decodeBody(t, rec.Body, &res)
		return res
	}

	t.Run("Builtin", func(t *testing.T) {
		res := validate(t, map[string]string{"name": "@cliq/feature"})
		if !res.Valid || len(res.Errors) != 0 || res.Name != "@cliq/feature" {
			t.Errorf("validate = %+v, want valid", res)
		}
	})
	t.Run("Problems", func(t *testing.T) {
		res := validate(t, map[string]string{"name": "@local/broken"})
		if res.Valid {
			t.Fatalf("validate = %+v, want invalid", res)
		}
		i := slices.IndexFunc(res.Errors, func(e teams.ValidationError) bool {
			return e.Phase == "check" && e.Field == "max_iterations"
		})
		if i < 0 {
			t.Fatalf("errors = %+v, want one for check.max_iterations", res.Errors)
		}
		if e := res.Errors[i]; e.File != "team.yml" || e.Line != 11 || e.Message == "" {
			t.Errorf("error = %+v, want team.yml line 11 with a message", e)
		}
	})
	t.Run("Cycle", func(t *testing.T) {
		res := validate(t, map[string]string{"name": "@t/a"})
		if res.Valid || len(res.Errors) != 1 {
			t.Fatalf("validate = %+v, want one error", res)
		}
		e := res.Errors[0]
		if e.Phase != "sub" || e.Field != "team" || !strings.Contains(e.Message, "@t/a -> @t/b -> @t/a") {
			t.Errorf("error = %+v, want phase sub, field team and the chain @t/a -> @t/b -> @t/a", e)
		}
	})
	t.Run("NestedProject", func(t *testing.T) {
		res := validate(t, map[string]string{"name": "@project", "instance_id": project.ID})
		if !res.Valid || res.Name != "@testdata/nested-parent" {
			t.Errorf("validate = %+v, want the valid @testdata/nested-parent", res)
		}
	})
	t.Run("NotFound", func(t *testing.T) {
		rec := postJSON(t, s, "/teams/validate", map[string]string{"name": "nope"})
		mustTeamError(t, rec, home, http.StatusNotFound, CodeNotFound)
	})
	t.Run("Directory", func(t *testing.T) {
		// A directory of the server is not a team name.
		rec := postJSON(t, s, "/teams/validate/", map[string]string{"name": "./testdata/teams/demo"})
		mustTeamError(t, rec, home, http.StatusBadRequest, CodeInvalidRequest)
	})
}

// escapeNames would leave CLIQ_HOME/teams if they were joined to it
// unchecked.
var escapeNames = []string{"../x", "@local/../../etc", "/etc/passwd", "@../x", "x\x00y", "@local/x\x00", "..", `@local\..\x`}

func TestServer_TeamNameEscape(t *testing.T) {
	s, _, home := newTeamServer(t)
	// Each case puts the name into one field of one endpoint.
	cases := []struct {
		path string
		body func(name string) map[string]string
	}{
		{"/teams/get/", func(n string) map[string]string { return map[string]string{"name": n} }},
		{"/teams/validate/", func(n string) map[string]string { return map[string]string{"name": n} }},
		{"/teams/create/", func(n string) map[string]string { return map[string]string{"name": n} }},
		{"/teams/delete/", func(n string) map[string]string { return map[string]string{"name": n} }},
		{"/teams/copy/", func(n string) map[string]string { return map[string]string{"source": n, "name": "ok"} }},
		{"/teams/copy/", func(n string) map[string]string {
			return map[string]string{"source": "@cliq/hello-world", "name": n}
		}},
	}
	for _, c := range cases {
		field := "name"
		if c.body("probe")["source"] == "probe" {
			field = "source"
		}
		for _, name := range escapeNames {
			t.Run(strings.Trim(c.path, "/")+"/"+field+"/"+strings.ToValidUTF8(name, "?"), func(t *testing.T) {
				rec := postJSON(t, s, c.path, c.body(name))
				msg := mustTeamError(t, rec, home, http.StatusBadRequest, CodeInvalidRequest)
				if strings.ContainsRune(msg, 0) {
					t.Errorf("message %q contains a raw NUL byte", msg)
				}
			})
		}
	}

	// Nothing was written outside CLIQ_HOME/teams, and no team inside it.
	entries, err := os.ReadDir(filepath.Dir(home))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() == "x" || e.Name() == "etc" {
			t.Errorf("%s was created next to CLIQ_HOME", e.Name())
		}
	}
	installed, err := filepath.Glob(filepath.Join(home, "teams", "@*", "*"))
	if err != nil {
		t.Fatal(err)
	}
	if len(installed) != 0 {
		t.Errorf("teams were installed: %v", installed)
	}
}

func TestServer_ListTeamsPostgres(t *testing.T) {
	db := storetest.OpenPostgres(t)
	home := t.TempDir()
	s, _ := newTestServer(t, func(cfg *Config) {
		cfg.Home, cfg.DB, cfg.Verifier = home, db, auth.NewVerifier(testToken, db)
	})
	project := newProject(t, db, "nested-parent", "", nil)

	rec := postJSON(t, s, "/teams/list/", map[string]string{"instance_id": project.ID})
	mustStatus(t, rec, http.StatusOK)
	var got struct{ Teams []teams.Summary }
	decodeBody(t, rec.Body, &got)
	if sum, ok := findSummary(got.Teams, "@testdata/nested-parent"); !ok || sum.Scope != teams.ProjectScope {
		t.Errorf("teams = %+v, want the project's @testdata/nested-parent", got.Teams)
	}
	rec = postJSON(t, s, "/teams/validate/", map[string]string{"name": "@project", "instance_id": "cliq-ffffff"})
	mustTeamError(t, rec, home, http.StatusNotFound, CodeNotFound)
}
