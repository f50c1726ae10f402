package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"cliq/settings"

	"golang.org/x/net/websocket"
)

// Environment variables that point the client commands at a server.
const (
	ServerEnv = "CLIQ_SERVER"
	TokenEnv  = "CLIQ_TOKEN"
)

// apiClient calls a running server's JSON API.
type apiClient struct {
	base  string
	token string
	http  *http.Client
}

// apiError is an error response of the API.
type apiError struct {
	Status  int
	Code    string
	Message string
}

func (e *apiError) Error() string {
	return fmt.Sprintf("server answered %d %s: %s", e.Status, e.Code, e.Message)
}

// serverFile is the part of server.json that clients read.
type serverFile struct {
	PID   int    `json:"pid"`
	Port  int    `json:"port"`
	URL   string `json:"url"`
	Token string `json:"token"`
}

// addClientFlags adds --server and --token to fs; newClient reads them.
func addClientFlags(fs interface {
	String(name, value, usage string) *string
}) (server, token *string) {
	server = fs.String("server", "", "server `URL` (default: $CLIQ_SERVER, else the local server.json)")
	token = fs.String("token", "", "bearer `token` (default: $CLIQ_TOKEN, else the session token in server.json)")
	return server, token
}

// newClient builds a client from the flags, the environment and, for what
// is still missing, the local server.json.
func newClient(server, token string) (*apiClient, error) {
	if server == "" {
		server = os.Getenv(ServerEnv)
	}
	if token == "" {
		token = os.Getenv(TokenEnv)
	}
	if server == "" || token == "" {
		info, err := readServerFile()
		if err != nil {
			return nil, err
		}
		if server == "" {
			server = info.URL
		}
		if token == "" {
			token = info.Token
		}
	}
	server = strings.TrimRight(server, "/")
	if !strings.HasPrefix(server, "http://") && !strings.HasPrefix(server, "https://") {
		return nil, fmt.Errorf("server URL %q must start with http:// or https://", server)
	}
	return &apiClient{base: server, token: token, http: &http.Client{Timeout: 30 * time.Second}}, nil
}

func readServerFile() (*serverFile, error) {
	home, err := settings.Home()
	if err != nil {
		return nil, err
	}
	path := filepath.Join(home, "server.json")
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("no server is running for %s (no server.json); start one with 'cliq server start', or pass --server and --token", home)
	}
	if err != nil {
		return nil, err
	}
	var info serverFile
	if err := json.Unmarshal(data, &info); err != nil {
		return nil, fmt.Errorf("%s: invalid JSON: %w", path, err)
	}
	return &info, nil
}

// call posts req as JSON to path and decodes the response into resp.
func (c *apiClient) call(ctx context.Context, path string, req, resp any) error {
	body, err := json.Marshal(req)
	if err != nil {
		return err
	}
	r, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("Authorization", "Bearer "+c.token)
	res, err := c.http.Do(r)
	if err != nil {
		return fmt.Errorf("call %s: %w", path, err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(io.LimitReader(res.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("read response of %s: %w", path, err)
	}
	if res.StatusCode >= 300 {
		var e struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		if json.Unmarshal(data, &e) != nil || e.Error.Code == "" {
			return &apiError{Status: res.StatusCode, Code: http.StatusText(res.StatusCode), Message: strings.TrimSpace(string(data))}
		}
		return &apiError{Status: res.StatusCode, Code: e.Error.Code, Message: e.Error.Message}
	}
	if resp == nil {
		return nil
	}
	if err := json.Unmarshal(data, resp); err != nil {
		return fmt.Errorf("decode response of %s: %w", path, err)
	}
	return nil
}

// dialEvents opens the server's event WebSocket. The token travels in the
// Authorization header, so it never appears in a URL that a proxy may log.
func (c *apiClient) dialEvents() (*websocket.Conn, error) {
	config, err := websocket.NewConfig("ws"+strings.TrimPrefix(c.base, "http")+"/ws", c.base)
	if err != nil {
		return nil, err
	}
	config.Header = http.Header{"Authorization": {"Bearer " + c.token}}
	config.Dialer = &net.Dialer{Timeout: 10 * time.Second}
	ws, err := websocket.DialConfig(config)
	if err != nil {
		return nil, fmt.Errorf("connect to the event stream of %s: %w", c.base, err)
	}
	return ws, nil
}
