package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"cliq/logging"
	"cliq/settings"
)

func init() {
	extraCommands = append(extraCommands,
		command{"logs", "print and follow the server log", runLogs})
}

const logsUsage = `
Usage: cliq logs [--level L] [--component C] [--instance ID] [--since T] [-n N] [-f] [--json]

Prints the server's log ($CLIQ_HOME/logs/server.log, after the rotated files
server.log.N ... server.log.1 it still has), one readable line per entry:
time, level, component, message and the other fields. Filters combine.

Examples:
  cliq logs --level warn
  cliq logs --component monitor --since 10m
  cliq logs --instance cliq-a1b2c3 -f
  cliq logs --since 2026-01-02T15:00:00Z --json
`

// logsPollInterval is how often cliq logs -f checks the log for new lines.
var logsPollInterval = 200 * time.Millisecond

// logFilter selects log lines.
type logFilter struct {
	level     slog.Level
	component string
	instance  string
	since     time.Time
}

// logsOptions are the parsed flags of cliq logs.
type logsOptions struct {
	filter logFilter
	tail   int
	follow bool
	raw    bool
	poll   time.Duration
}

func runLogs(ctx context.Context, env *Env, args []string) error {
	opts, err := parseLogsFlags(env, args)
	if err != nil {
		return err
	}
	home, err := settings.Home()
	if err != nil {
		return err
	}
	path := logging.Path(home)
	if _, err := os.Stat(path); err != nil && !opts.follow {
		return fmt.Errorf("no server log at %s yet: start the server with 'cliq server start'", path)
	}
	out := &logPrinter{w: env.Stdout, opts: opts}
	if err := printHistory(path, out); err != nil {
		return err
	}
	if !opts.follow {
		return nil
	}
	return followLog(ctx, path, out)
}

func parseLogsFlags(env *Env, args []string) (logsOptions, error) {
	fs := newFlagSet(env, "logs", logsUsage)
	level := fs.String("level", "trace", "print lines at `LEVEL` and above: error, warn, info, debug or trace")
	component := fs.String("component", "", "print lines of `COMPONENT` only (server, hub, monitor, store, pipeline, ...)")
	instance := fs.String("instance", "", "print lines about instance `ID` only")
	since := fs.String("since", "", "print lines from `TIME` on: a duration back from now (10m, 2h) or an RFC 3339 time")
	tail := fs.Int("n", 0, "print only the last `N` matching lines of the history (0: all)")
	follow := fs.Bool("f", false, "keep printing new lines as they are written, until interrupted")
	raw := fs.Bool("json", false, "print the JSON lines as they are stored")
	if pos, err := parseFlags(fs, args); err != nil {
		return logsOptions{}, err
	} else if len(pos) > 0 {
		return logsOptions{}, usagef("logs takes no arguments, got %q; see 'cliq logs -h'", pos[0])
	}

	opts := logsOptions{tail: *tail, follow: *follow, raw: *raw, poll: logsPollInterval}
	var err error
	if opts.filter.level, err = logging.ParseLevel(*level); err != nil {
		return logsOptions{}, usagef("--level: %v", err)
	}
	if opts.filter.since, err = parseSince(*since, time.Now()); err != nil {
		return logsOptions{}, err
	}
	if *tail < 0 {
		return logsOptions{}, usagef("-n %d: give a count of 0 or more", *tail)
	}
	opts.filter.component, opts.filter.instance = *component, *instance
	return opts, nil
}

// parseSince reads --since: empty, a duration back from now, or an RFC 3339
// time.
func parseSince(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	return time.Time{}, usagef("--since %q is neither a duration (10m, 2h) nor an RFC 3339 time (2026-01-02T15:04:05Z)", s)
}

// logFiles returns the rotated files of path, oldest first, then path.
func logFiles(path string) []string {
	matches, _ := filepath.Glob(path + ".*")
	type numbered struct {
		path string
		n    int
	}
	var rotated []numbered
	for _, m := range matches {
		if n, err := strconv.Atoi(strings.TrimPrefix(m, path+".")); err == nil && n > 0 {
			rotated = append(rotated, numbered{m, n})
		}
	}
	sort.Slice(rotated, func(i, j int) bool { return rotated[i].n > rotated[j].n })
	out := make([]string, 0, len(rotated)+1)
	for _, r := range rotated {
		out = append(out, r.path)
	}
	return append(out, path)
}

// printHistory prints the matching lines of every log file, or the last
// opts.tail of them.
func printHistory(path string, out *logPrinter) error {
	var matched [][]byte
	for _, file := range logFiles(path) {
		f, err := os.Open(file)
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			return fmt.Errorf("read server log: %w", err)
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 64<<10), 4<<20)
		for sc.Scan() {
			if out.opts.filter.match(sc.Bytes()) {
				matched = append(matched, bytes.Clone(sc.Bytes()))
				if out.opts.tail > 0 && len(matched) > out.opts.tail {
					matched = matched[1:]
				}
			}
		}
		err = sc.Err()
		f.Close()
		if err != nil {
			return fmt.Errorf("read %s: %w", file, err)
		}
	}
	for _, line := range matched {
		out.print(line)
	}
	return nil
}

// followLog prints lines appended to path until ctx ends, polling every
// opts.poll. When the file is rotated it finishes the old file and
// continues with the new one from its start.
// NOTE: when the log rotates twice within one poll interval, the lines of
// the file in between are skipped.
func followLog(ctx context.Context, path string, out *logPrinter) error {
	f, offset := openAtEnd(path)
	defer func() {
		if f != nil {
			f.Close()
		}
	}()
	var partial []byte
	ticker := time.NewTicker(out.opts.poll)
	defer ticker.Stop()
	for {
		if f != nil {
			partial = readNew(f, &offset, partial, out)
			if rotated(f, path, offset) {
				partial = readNew(f, &offset, partial, out)
				f.Close()
				f, offset, partial = nil, 0, nil
			}
		}
		if f == nil {
			f, _ = os.Open(path)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
		}
	}
}

// openAtEnd opens path and returns its size, so that following starts
// after the history already printed. A missing file yields nil.
func openAtEnd(path string) (*os.File, int64) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0
	}
	info, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0
	}
	return f, info.Size()
}

// readNew prints the complete lines written to f after offset and returns
// the unfinished rest.
func readNew(f *os.File, offset *int64, partial []byte, out *logPrinter) []byte {
	buf := make([]byte, 64<<10)
	for {
		n, err := f.ReadAt(buf, *offset)
		*offset += int64(n)
		partial = append(partial, buf[:n]...)
		for {
			i := bytes.IndexByte(partial, '\n')
			if i < 0 {
				break
			}
			if out.opts.filter.match(partial[:i]) {
				out.print(partial[:i])
			}
			partial = partial[i+1:]
		}
		if err != nil || n == 0 {
			return bytes.Clone(partial)
		}
	}
}

// rotated reports whether path now names another file than f, or f shrank.
func rotated(f *os.File, path string, offset int64) bool {
	current, err := os.Stat(path)
	if err != nil {
		return false
	}
	open, err := f.Stat()
	if err != nil {
		return true
	}
	return !os.SameFile(open, current) || open.Size() < offset
}

// match reports whether a JSON log line passes the filter. A line that is
// not JSON passes only when no filter is set.
func (f logFilter) match(line []byte) bool {
	if len(bytes.TrimSpace(line)) == 0 {
		return false
	}
	var entry map[string]any
	if err := json.Unmarshal(line, &entry); err != nil {
		return f.level <= logging.LevelTrace && f.component == "" && f.instance == "" && f.since.IsZero()
	}
	if name, _ := entry["level"].(string); name != "" {
		if l, err := logging.ParseLevel(name); err == nil && l < f.level {
			return false
		}
	}
	if f.component != "" && entry["component"] != f.component {
		return false
	}
	if f.instance != "" && entry["instance_id"] != f.instance {
		return false
	}
	if !f.since.IsZero() {
		ts, _ := entry["time"].(string)
		t, err := time.Parse(time.RFC3339Nano, ts)
		if err != nil || t.Before(f.since) {
			return false
		}
	}
	return true
}

// logPrinter writes matching lines raw or readable.
type logPrinter struct {
	w    io.Writer
	opts logsOptions
}

func (p *logPrinter) print(line []byte) {
	if p.opts.raw {
		fmt.Fprintf(p.w, "%s\n", line)
		return
	}
	fmt.Fprintln(p.w, readableLogLine(line))
}

// readableLogLine renders a JSON log line as "TIME LEVEL [component] msg
// key=value ...", with the other fields sorted by key. A line that is not
// JSON is returned as it is.
func readableLogLine(line []byte) string {
	var entry map[string]any
	if err := json.Unmarshal(line, &entry); err != nil {
		return string(line)
	}
	var b strings.Builder
	ts, _ := entry["time"].(string)
	if t, err := time.Parse(time.RFC3339Nano, ts); err == nil {
		ts = t.Local().Format("2006-01-02 15:04:05.000")
	}
	level, _ := entry["level"].(string)
	fmt.Fprintf(&b, "%s %-5s", ts, strings.ToUpper(level))
	if c, ok := entry["component"].(string); ok {
		fmt.Fprintf(&b, " [%s]", c)
	}
	fmt.Fprintf(&b, " %v", entry["msg"])
	keys := make([]string, 0, len(entry))
	for k := range entry {
		switch k {
		case "time", "level", "msg", "component":
		default:
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, " %s=%s", k, formatLogValue(entry[k]))
	}
	return b.String()
}

func formatLogValue(v any) string {
	switch x := v.(type) {
	case string:
		if x == "" || strings.ContainsAny(x, " \t\"=") {
			return strconv.Quote(x)
		}
		return x
	case nil:
		return "null"
	}
	data, _ := json.Marshal(v)
	return string(data)
}
