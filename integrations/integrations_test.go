package integrations

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"cliq/settings"
)

const (
	githubToken = "ghp_0123456789abcdefSECRET"
	jiraToken   = "jira-token-0123456789SECRET"
	slackPath   = "/services/T000/B000/SLACKSECRET0123"
	headerToken = "Bearer hdr-0123456789SECRET"
)

// captured is what a test server saw of the one request it got.
type captured struct {
	method, path, auth, body, contentType, custom string
}

// newServer starts a local server that records each request on the
// returned channel and responds with status and body.
func newServer(tb testing.TB, status int, body string) (*httptest.Server, <-chan captured) {
	tb.Helper()
	got := make(chan captured, 4)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		data, _ := io.ReadAll(r.Body)
		got <- captured{r.Method, r.URL.Path, r.Header.Get("Authorization"), string(data),
			r.Header.Get("Content-Type"), r.Header.Get("X-Custom")}
		w.WriteHeader(status)
		io.WriteString(w, body)
	}))
	tb.Cleanup(srv.Close)
	return srv, got
}

func testSettings(url string) settings.Map {
	return settings.Map{"integrations": settings.Map{
		"hook": settings.Map{"type": "http", "url": url + "/ping", "method": "POST",
			"headers": settings.Map{"Authorization": headerToken, "X-Custom": "v"}},
		"slack":   settings.Map{"webhook_url": url + slackPath},
		"gh":      settings.Map{"type": "github", "token": githubToken, "api_url": url + "/api/"},
		"tracker": settings.Map{"type": "jira", "url": url, "email": "dev@example.com", "api_token": jiraToken},
	}}
}

func mustTest(tb testing.TB, m settings.Map, name string, timeout time.Duration) Result {
	tb.Helper()
	res, err := Test(context.Background(), m, name, timeout)
	if err != nil {
		tb.Fatalf("Test(%s): %v", name, err)
	}
	return res
}

func receive(tb testing.TB, ch <-chan captured) captured {
	tb.Helper()
	select {
	case c := <-ch:
		return c
	case <-time.After(5 * time.Second):
		tb.Fatal("the test server got no request")
		return captured{}
	}
}

func TestTest(t *testing.T) {
	srv, got := newServer(t, http.StatusOK, `{"ok":true}`)
	m := testSettings(srv.URL)

	t.Run("HTTP", func(t *testing.T) {
		res := mustTest(t, m, "hook", 0)
		if !res.OK || res.Status != 200 || res.Error != "" || res.Type != "http" {
			t.Errorf("result = %+v, want ok with status 200", res)
		}
		c := receive(t, got)
		if c.method != "POST" || c.path != "/ping" || c.auth != headerToken || c.custom != "v" {
			t.Errorf("server saw %+v", c)
		}
	})
	t.Run("Slack", func(t *testing.T) {
		res := mustTest(t, m, "slack", 0)
		if !res.OK || res.Type != "slack" {
			t.Errorf("result = %+v, want ok", res)
		}
		c := receive(t, got)
		var body map[string]string
		if err := json.Unmarshal([]byte(c.body), &body); err != nil || body["text"] != SlackTestText {
			t.Errorf("slack body = %q, want {\"text\": %q}", c.body, SlackTestText)
		}
		if c.method != "POST" || c.path != slackPath || c.contentType != "application/json" {
			t.Errorf("server saw %+v", c)
		}
	})
	t.Run("GitHub", func(t *testing.T) {
		res := mustTest(t, m, "gh", 0)
		if !res.OK {
			t.Errorf("result = %+v, want ok", res)
		}
		c := receive(t, got)
		if c.method != "GET" || c.path != "/api/user" || c.auth != "Bearer "+githubToken {
			t.Errorf("server saw %+v", c)
		}
	})
	t.Run("Jira", func(t *testing.T) {
		res := mustTest(t, m, "tracker", 0)
		if !res.OK {
			t.Errorf("result = %+v, want ok", res)
		}
		c := receive(t, got)
		req, _ := http.NewRequest("GET", "/", nil)
		req.SetBasicAuth("dev@example.com", jiraToken)
		if c.path != "/rest/api/2/myself" || c.auth != req.Header.Get("Authorization") {
			t.Errorf("server saw %+v", c)
		}
	})
	t.Run("TargetByType", func(t *testing.T) {
		res := mustTest(t, m, "jira", 0)
		if res.Name != "tracker" || !res.OK {
			t.Errorf("result = %+v, want the tracker integration", res)
		}
		receive(t, got)
	})
}

func TestTest_Failures(t *testing.T) {
	t.Run("Status500", func(t *testing.T) {
		srv, _ := newServer(t, http.StatusInternalServerError, "boom\n  internal")
		res := mustTest(t, testSettings(srv.URL), "gh", 0)
		if res.OK || res.Status != 500 {
			t.Fatalf("result = %+v, want not ok with status 500", res)
		}
		if !strings.Contains(res.Error, "500 Internal Server Error: boom internal") {
			t.Errorf("error = %q, want the status and the body excerpt", res.Error)
		}
	})
	t.Run("Unauthorized", func(t *testing.T) {
		// A server that echoes the credential back must not make the
		// result show it.
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, "bad credentials: "+r.Header.Get("Authorization")+" at "+r.URL.Path)
		}))
		defer srv.Close()
		for _, name := range []string{"gh", "slack", "hook"} {
			res := mustTest(t, testSettings(srv.URL), name, 0)
			if res.OK || res.Status != 401 || !strings.Contains(res.Error, "check the credentials") {
				t.Errorf("%s: result = %+v, want 401 with a hint", name, res)
			}
			for _, secret := range []string{githubToken, "SLACKSECRET0123", "hdr-0123456789SECRET"} {
				if strings.Contains(res.Error, secret) {
					t.Errorf("%s: error %q shows a secret", name, res.Error)
				}
			}
		}
	})
	t.Run("Timeout", func(t *testing.T) {
		release := make(chan struct{})
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}))
		defer srv.Close()
		defer close(release)
		res := mustTest(t, testSettings(srv.URL), "slack", 100*time.Millisecond)
		if res.OK || !strings.Contains(res.Error, "timed out after 100ms") {
			t.Errorf("result = %+v, want a timeout", res)
		}
		if strings.Contains(res.Error, "SLACKSECRET") {
			t.Errorf("error %q shows the webhook path", res.Error)
		}
	})
	t.Run("ConnectionRefused", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		res := mustTest(t, testSettings("http://"+addr), "slack", 0)
		if res.OK || !strings.Contains(res.Error, "connection to http://"+addr+" refused") {
			t.Errorf("result = %+v, want connection refused", res)
		}
		if strings.Contains(res.Error, "SLACKSECRET") {
			t.Errorf("error %q shows the webhook path", res.Error)
		}
	})
	t.Run("MissingSetting", func(t *testing.T) {
		m := settings.Map{"integrations": settings.Map{"tracker": settings.Map{"type": "jira", "url": "http://127.0.0.1:1"}}}
		res := mustTest(t, m, "tracker", 0)
		if res.OK || res.Error != "integrations.tracker.email is missing: set it in the settings before testing" {
			t.Errorf("result = %+v, want the missing email named", res)
		}
	})
	t.Run("ErrNotFound", func(t *testing.T) {
		_, err := Test(context.Background(), testSettings("http://127.0.0.1:1"), "bitbucket", 0)
		if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), `"bitbucket"`) {
			t.Errorf("err = %v, want ErrNotFound naming the target", err)
		}
		_, err = Test(context.Background(), settings.Map{}, "x", 0)
		if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "no integrations are configured") {
			t.Errorf("err = %v, want ErrNotFound saying none are configured", err)
		}
	})
}

func TestList(t *testing.T) {
	list := List(testSettings("http://127.0.0.1:9"))
	var names []string
	for _, it := range list {
		names = append(names, it.Name+":"+it.Type)
	}
	if strings.Join(names, ",") != "gh:github,hook:http,slack:slack,tracker:jira" {
		t.Errorf("List = %v", names)
	}
	data, _ := json.Marshal(list)
	for _, secret := range []string{githubToken, jiraToken, "SLACKSECRET0123", "hdr-0123456789SECRET"} {
		if strings.Contains(string(data), secret) {
			t.Errorf("List shows the secret %q: %s", secret, data)
		}
	}
	if len(List(settings.Map{})) != 0 {
		t.Error("List of empty settings is not empty")
	}
}

func TestGet(t *testing.T) {
	m := testSettings("http://127.0.0.1:9")
	it, err := Get(m, "gh")
	if err != nil {
		t.Fatal(err)
	}
	if it.Config["token"] != "****CRET" || it.Config["api_url"] != "http://127.0.0.1:9/api/" {
		t.Errorf("config = %v, want the token masked and the URL shown", it.Config)
	}
	if _, err := Get(m, "nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get(nope) err = %v, want ErrNotFound", err)
	}
}
