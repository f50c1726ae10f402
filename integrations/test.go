package integrations

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"time"

	"cliq/logging"
	"cliq/settings"
)

// DefaultTimeout bounds a connectivity test when the caller gives none.
const DefaultTimeout = 10 * time.Second

// maxBodyExcerpt is how much of an error response's body a Result shows.
const maxBodyExcerpt = 200

// SlackTestText is the message a Slack test posts to the webhook's
// channel.
const SlackTestText = "cliq connectivity test"

// Result is the outcome of a connectivity test. OK is true for a 2xx
// response. Error describes the failure without any secret. DurationMS is
// the time the request took.
type Result struct {
	Name       string `json:"name"`
	Type       string `json:"type"`
	OK         bool   `json:"ok"`
	Status     int    `json:"status,omitempty"`
	Error      string `json:"error,omitempty"`
	DurationMS int64  `json:"duration_ms"`
}

// Test makes one real request to the integration target (see Get for how
// the name is found) and reports the outcome:
//   - http: the configured method (default GET) to url, with headers;
//   - slack: POST {"text": SlackTestText} to webhook_url, which posts the
//     message to the webhook's channel;
//   - github: GET api_url/user (default https://api.github.com) with the
//     token as a Bearer credential;
//   - jira: GET url/rest/api/2/myself with email and api_token as Basic
//     credentials.
//
// The request is bounded by timeout (DefaultTimeout when not positive) and
// by ctx. A failed request, a non-2xx status or incomplete settings are
// reported in the Result; the returned error is for an unknown target
// (wrapping ErrNotFound) only.
func Test(ctx context.Context, m settings.Map, target string, timeout time.Duration) (Result, error) {
	name, cfg, err := find(m, target)
	if err != nil {
		return Result{}, err
	}
	res := Result{Name: name, Type: settings.IntegrationType(name, cfg)}
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	req, err := newRequest(ctx, name, res.Type, cfg)
	if err != nil {
		res.Error = err.Error()
		return res, nil
	}
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		res.DurationMS = time.Since(start).Milliseconds()
		res.Error = scrub(describeError(req.URL, err, timeout), cfg)
		return res, nil
	}
	excerpt := readExcerpt(resp.Body)
	res.DurationMS = time.Since(start).Milliseconds()
	res.Status = resp.StatusCode
	res.OK = resp.StatusCode >= 200 && resp.StatusCode < 300
	if !res.OK {
		res.Error = scrub(describeStatus(req.URL, resp, excerpt), cfg)
	}
	return res, nil
}

// newRequest builds the test request of one integration type. Its error
// names the missing or invalid setting.
func newRequest(ctx context.Context, name, typ string, cfg settings.Map) (*http.Request, error) {
	key := func(k string) string { return "integrations." + name + "." + k }
	need := func(keys ...string) error {
		for _, k := range keys {
			if s, _ := cfg[k].(string); s == "" {
				return fmt.Errorf("%s is missing: set it in the settings before testing", key(k))
			}
		}
		return nil
	}
	switch typ {
	case "http":
		if err := need("url"); err != nil {
			return nil, err
		}
		return httpRequest(ctx, cfg)
	case "slack":
		if err := need("webhook_url"); err != nil {
			return nil, err
		}
		return slackRequest(ctx, cfg)
	case "github":
		if err := need("token"); err != nil {
			return nil, err
		}
		return githubRequest(ctx, cfg)
	case "jira":
		if err := need("url", "email", "api_token"); err != nil {
			return nil, err
		}
		return jiraRequest(ctx, cfg)
	}
	return nil, fmt.Errorf("%s is %q: set it to one of %s", key("type"), typ,
		strings.Join(settings.IntegrationTypes, ", "))
}

func httpRequest(ctx context.Context, cfg settings.Map) (*http.Request, error) {
	method, _ := cfg["method"].(string)
	if method == "" {
		method = http.MethodGet
	}
	req, err := newSafeRequest(ctx, method, cfg["url"].(string), nil)
	if err != nil {
		return nil, err
	}
	headers, _ := cfg["headers"].(settings.Map)
	for k, v := range headers {
		if s, ok := v.(string); ok {
			req.Header.Set(k, s)
		}
	}
	return req, nil
}

func slackRequest(ctx context.Context, cfg settings.Map) (*http.Request, error) {
	body := []byte(`{"text":"` + SlackTestText + `"}`)
	req, err := newSafeRequest(ctx, http.MethodPost, cfg["webhook_url"].(string), bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	return req, nil
}

func githubRequest(ctx context.Context, cfg settings.Map) (*http.Request, error) {
	base, _ := cfg["api_url"].(string)
	if base == "" {
		base = "https://api.github.com"
	}
	req, err := newSafeRequest(ctx, http.MethodGet, strings.TrimRight(base, "/")+"/user", nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+cfg["token"].(string))
	req.Header.Set("Accept", "application/vnd.github+json")
	return req, nil
}

func jiraRequest(ctx context.Context, cfg settings.Map) (*http.Request, error) {
	base := strings.TrimRight(cfg["url"].(string), "/")
	req, err := newSafeRequest(ctx, http.MethodGet, base+"/rest/api/2/myself", nil)
	if err != nil {
		return nil, err
	}
	req.SetBasicAuth(cfg["email"].(string), cfg["api_token"].(string))
	req.Header.Set("Accept", "application/json")
	return req, nil
}

// newSafeRequest is http.NewRequestWithContext with an error that does not
// repeat the URL, whose path or query may carry a secret.
func newSafeRequest(ctx context.Context, method, rawURL string, body io.Reader) (*http.Request, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errors.New("the configured URL is not a valid http:// or https:// URL")
	}
	req, err := http.NewRequestWithContext(ctx, method, rawURL, body)
	if err != nil {
		return nil, fmt.Errorf("build %s request to %s: invalid method or URL", method, origin(u))
	}
	req.Header.Set("User-Agent", "cliq")
	return req, nil
}

// describeError turns a transport error into a short message naming the
// target's origin only.
func describeError(u *url.URL, err error, timeout time.Duration) string {
	var netErr net.Error
	var dnsErr *net.DNSError
	switch {
	case errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &netErr) && netErr.Timeout()):
		return fmt.Sprintf("request to %s timed out after %s", origin(u), timeout)
	case errors.Is(err, context.Canceled):
		return fmt.Sprintf("request to %s was cancelled", origin(u))
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Sprintf("connection to %s refused: is the service running at that address?", origin(u))
	case errors.As(err, &dnsErr):
		return fmt.Sprintf("host %s not found: check the URL in the settings", u.Hostname())
	}
	var urlErr *url.Error
	if errors.As(err, &urlErr) {
		err = urlErr.Err
	}
	return fmt.Sprintf("request to %s failed: %v", origin(u), err)
}

func describeStatus(u *url.URL, resp *http.Response, excerpt string) string {
	msg := fmt.Sprintf("%s returned %s", origin(u), resp.Status)
	switch resp.StatusCode {
	case http.StatusUnauthorized, http.StatusForbidden:
		msg += " (check the credentials in the settings)"
	case http.StatusNotFound:
		msg += " (check the URL in the settings)"
	}
	if excerpt != "" {
		msg += ": " + excerpt
	}
	return msg
}

// readExcerpt reads the start of an error body as one line and drains the
// rest (up to 64 KiB) so the connection can be reused.
func readExcerpt(body io.ReadCloser) string {
	defer body.Close()
	data, _ := io.ReadAll(io.LimitReader(body, 64<<10))
	s := strings.Join(strings.Fields(string(data)), " ")
	if len(s) > maxBodyExcerpt {
		s = s[:maxBodyExcerpt] + "..."
	}
	return s
}

// origin returns scheme://host of u: never its path, query or userinfo.
func origin(u *url.URL) string {
	return u.Scheme + "://" + u.Host
}

// scrub removes from msg every secret of cfg (for a secret URL, also its
// path and query alone) and every secret shape that logging.Redact matches, so
// that a server echoing a credential back does not reveal it.
func scrub(msg string, cfg settings.Map) string {
	var secrets []string
	collect := func(m settings.Map) {
		for k, v := range m {
			if s, ok := v.(string); ok && settings.IsSecretKey(k) {
				secrets = append(secrets, s)
				if u, err := url.Parse(s); err == nil && u.Host != "" {
					secrets = append(secrets, u.EscapedPath(), u.RawQuery)
				}
			}
		}
	}
	collect(cfg)
	if headers, ok := cfg["headers"].(settings.Map); ok {
		collect(headers)
	}
	for _, s := range secrets {
		if len(s) >= 4 {
			msg = strings.ReplaceAll(msg, s, settings.MaskPrefix)
		}
	}
	return logging.Redact(msg)
}
