package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"cliq/events"
	"cliq/pipeline"

	"golang.org/x/net/websocket"
)

func init() {
	extraCommands = append(extraCommands, command{"job", "start and watch pipelines on a running server", runJob})
}

const jobUsage = `
Usage: cliq job <command> [flags] [INSTANCE]

Talks to a running server. The server URL and token come from --server and
--token, else $CLIQ_SERVER and $CLIQ_TOKEN, else the local server.json.

Commands:
  start INSTANCE   start a run (--follow prints its events and exits with its code)
  status INSTANCE  show the current or last run
  list             list every instance with its run status
  phases INSTANCE  show each phase of the run
  log INSTANCE     print the orchestrator log (--tail N for the last N lines)
  cancel INSTANCE  cancel the active run

Examples:
  cliq job start cliq-a1b2c3 --follow
  cliq job log cliq-a1b2c3 --tail 20
`

func runJob(ctx context.Context, env *Env, args []string) error {
	if len(args) == 0 || isHelp(args[0]) {
		fmt.Fprint(env.Stderr, strings.TrimLeft(jobUsage, "\n"))
		if len(args) == 0 {
			return &exitError{code: ExitUsage}
		}
		return nil
	}
	sub := map[string]func(context.Context, *Env, []string) error{
		"start":  runJobStart,
		"status": runJobStatus,
		"list":   runJobList,
		"phases": runJobPhases,
		"log":    runJobLog,
		"cancel": runJobCancel,
	}[args[0]]
	if sub == nil {
		return usagef("unknown job command %q; see 'cliq job -h'", args[0])
	}
	return sub(ctx, env, args[1:])
}

// jobArgs parses the flags shared by the job commands and returns the
// client and the single INSTANCE argument.
func jobArgs(env *Env, name, usage string, args []string, extra func(fs flagAdder)) (*apiClient, string, error) {
	fs := newFlagSet(env, "job "+name, usage)
	server, token := addClientFlags(fs)
	if extra != nil {
		extra(fs)
	}
	pos, err := parseFlags(fs, args)
	if err != nil {
		return nil, "", err
	}
	if len(pos) != 1 {
		return nil, "", usagef("job %s needs one INSTANCE id, got %d arguments", name, len(pos))
	}
	c, err := newClient(*server, *token)
	return c, pos[0], err
}

// flagAdder is the part of flag.FlagSet that the job commands use to add
// their own flags.
type flagAdder interface {
	String(name, value, usage string) *string
	Bool(name string, value bool, usage string) *bool
	Int(name string, value int, usage string) *int
}

// job is the API's view of a run.
type job struct {
	InstanceID   string   `json:"instance_id"`
	RunID        string   `json:"run_id"`
	Status       string   `json:"status"`
	Team         string   `json:"team"`
	StartedAt    *string  `json:"started_at"`
	FinishedAt   *string  `json:"finished_at"`
	Reason       string   `json:"reason"`
	ActivePhases []string `json:"active_phases"`
}

const jobStartUsage = `
Usage: cliq job start INSTANCE [--follow] [--req-file PATH] [--force] [--settings JSON]

Starts a run of INSTANCE on the server. With --follow it prints every event
as it arrives and exits with the run's exit code (0 completed, 1 failed,
3 escalated, 4 cancelled). Ctrl+C stops following (exit code 130) and
leaves the run going.
`

// ExitInterrupted is the exit code of a command stopped by SIGINT or
// SIGTERM while it only watched, such as job start --follow.
const ExitInterrupted = 130

func runJobStart(ctx context.Context, env *Env, args []string) error {
	var follow, force *bool
	var reqFile, patch *string
	c, id, err := jobArgs(env, "start", jobStartUsage, args, func(fs flagAdder) {
		follow = fs.Bool("follow", false, "print the run's events until it ends, then exit with its code")
		force = fs.Bool("force", false, "cancel an active run first")
		reqFile = fs.String("req-file", "", "set the requirement from `PATH`, a file inside the project")
		patch = fs.String("settings", "", "a settings patch as `JSON`, for this run only")
	})
	if err != nil {
		return err
	}
	req := map[string]any{"instance_id": id}
	if *force {
		req["force"] = true
	}
	if *reqFile != "" {
		req["req_file"] = *reqFile
	}
	if *patch != "" {
		var m map[string]any
		if err := json.Unmarshal([]byte(*patch), &m); err != nil {
			return usagef("--settings is not a JSON object: %v", err)
		}
		req["settings"] = m
	}

	var ws *websocket.Conn
	if *follow {
		// Subscribe before the run starts, so that no event is missed.
		ws, err = c.dialEvents()
		if err != nil {
			return err
		}
		defer ws.Close()
		if err := subscribe(ws, "job:"+id); err != nil {
			return err
		}
	}
	var started job
	if err := c.call(ctx, "/jobs/create/", req, &started); err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "Started run %s of %s\n", started.RunID, id)
	if !*follow {
		return nil
	}
	status, err := followRun(ctx, ws, started.RunID, env.Stdout)
	if ctx.Err() != nil {
		// Ctrl+C stops the watching, not the run.
		return &exitError{code: ExitInterrupted, msg: fmt.Sprintf("stopped following run %s, which goes on; cancel it with 'cliq job cancel %s'", started.RunID, id)}
	}
	if err != nil {
		return err
	}
	if code := pipeline.ExitCode(status); code != 0 {
		return &exitError{code: code}
	}
	return nil
}

// subscribe sends a subscribe message and waits for its acknowledgement.
func subscribe(ws *websocket.Conn, channel string) error {
	msg := map[string]any{"action": "subscribe", "channel": channel}
	if err := websocket.JSON.Send(ws, msg); err != nil {
		return fmt.Errorf("subscribe to %s: %w", channel, err)
	}
	ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	defer ws.SetReadDeadline(time.Time{})
	for {
		var reply struct {
			Type    string `json:"type"`
			Channel string `json:"channel"`
			Error   struct{ Code, Message string }
		}
		if err := websocket.JSON.Receive(ws, &reply); err != nil {
			return fmt.Errorf("subscribe to %s: %w", channel, err)
		}
		switch reply.Type {
		case "subscribed":
			return nil
		case "error":
			return fmt.Errorf("subscribe to %s: %s", channel, reply.Error.Message)
		}
	}
}

// followRun prints the events of runID until its final event and returns
// the run's final status.
func followRun(ctx context.Context, ws *websocket.Conn, runID string, out io.Writer) (string, error) {
	go func() {
		<-ctx.Done()
		ws.Close()
	}()
	printer := &progressPrinter{w: out, plain: !isTerminal(out)}
	for {
		var e events.Event
		if err := websocket.JSON.Receive(ws, &e); err != nil {
			if ctx.Err() != nil {
				return "", ctx.Err()
			}
			return "", fmt.Errorf("event stream ended before the run finished: %w", err)
		}
		if e.RunID != runID || e.Type == "" {
			continue
		}
		printer.print(e)
		if !e.Final() {
			continue
		}
		if e.Type == events.PipelineDone {
			return pipeline.StatusCompleted, nil
		}
		status, _ := e.Data["status"].(string)
		return status, nil
	}
}

func runJobStatus(ctx context.Context, env *Env, args []string) error {
	c, id, err := jobArgs(env, "status", "Usage: cliq job status INSTANCE\n\nShows the current or last run of INSTANCE.\n", args, nil)
	if err != nil {
		return err
	}
	var j job
	if err := c.call(ctx, "/jobs/get/", map[string]any{"instance_id": id}, &j); err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "Instance: %s\nRun:      %s\nStatus:   %s\nTeam:     %s\n", j.InstanceID, j.RunID, j.Status, j.Team)
	if j.StartedAt != nil {
		fmt.Fprintf(env.Stdout, "Started:  %s\n", *j.StartedAt)
	}
	if j.FinishedAt != nil {
		fmt.Fprintf(env.Stdout, "Finished: %s\n", *j.FinishedAt)
	}
	if j.Reason != "" {
		fmt.Fprintf(env.Stdout, "Reason:   %s\n", j.Reason)
	}
	if len(j.ActivePhases) > 0 {
		fmt.Fprintf(env.Stdout, "Active:   %s\n", strings.Join(j.ActivePhases, ", "))
	}
	return nil
}

func runJobList(ctx context.Context, env *Env, args []string) error {
	fs := newFlagSet(env, "job list", "Usage: cliq job list\n\nLists every registered instance with the status of its run.\n")
	server, token := addClientFlags(fs)
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usagef("job list takes no arguments")
	}
	c, err := newClient(*server, *token)
	if err != nil {
		return err
	}
	var res struct {
		Jobs []job `json:"jobs"`
	}
	if err := c.call(ctx, "/jobs/list/", map[string]any{}, &res); err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "%-16s %-10s %-28s %s\n", "INSTANCE", "STATUS", "RUN", "TEAM")
	for _, j := range res.Jobs {
		fmt.Fprintf(env.Stdout, "%-16s %-10s %-28s %s\n", j.InstanceID, j.Status, dash(j.RunID), dash(j.Team))
	}
	return nil
}

func runJobPhases(ctx context.Context, env *Env, args []string) error {
	c, id, err := jobArgs(env, "phases", "Usage: cliq job phases INSTANCE\n\nShows each phase of the current or last run.\n", args, nil)
	if err != nil {
		return err
	}
	var res struct {
		Phases []pipeline.PhaseState `json:"phases"`
	}
	if err := c.call(ctx, "/jobs/phases/", map[string]any{"instance_id": id}, &res); err != nil {
		return err
	}
	printPhases(env.Stdout, res.Phases, "")
	return nil
}

func runJobLog(ctx context.Context, env *Env, args []string) error {
	var tail *int
	c, id, err := jobArgs(env, "log", "Usage: cliq job log INSTANCE [--tail N]\n\nPrints the orchestrator log of the current or last run.\n", args, func(fs flagAdder) {
		tail = fs.Int("tail", 0, "print only the last `N` lines (0 prints all)")
	})
	if err != nil {
		return err
	}
	if *tail < 0 {
		return usagef("--tail %d is negative; give a number of lines, or 0 for all", *tail)
	}
	req := map[string]any{"instance_id": id}
	if *tail > 0 {
		req["tail"] = *tail
	}
	var res struct {
		Lines []string `json:"lines"`
	}
	if err := c.call(ctx, "/jobs/log/", req, &res); err != nil {
		return err
	}
	for _, line := range res.Lines {
		fmt.Fprintln(env.Stdout, line)
	}
	return nil
}

func runJobCancel(ctx context.Context, env *Env, args []string) error {
	c, id, err := jobArgs(env, "cancel", "Usage: cliq job cancel INSTANCE\n\nCancels the active run of INSTANCE.\n", args, nil)
	if err != nil {
		return err
	}
	var res struct {
		Status string `json:"status"`
	}
	err = c.call(ctx, "/jobs/cancel/", map[string]any{"instance_id": id}, &res)
	var apiErr *apiError
	if errors.As(err, &apiErr) && apiErr.Status == 409 {
		return fmt.Errorf("nothing to cancel: %s", apiErr.Message)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "Run of %s: %s\n", id, res.Status)
	return nil
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
