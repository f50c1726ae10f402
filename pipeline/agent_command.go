package pipeline

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// agentRun is the outcome of running a command agent once.
type agentRun struct {
	Output string
	Result processResult
}

// runAgent runs job's command agent in the project directory with prompt on
// stdin. The prompt is kept in files/<phase>/prompt.md, stdout goes to
// files/<phase>/output.md and stderr to files/<phase>/stderr.log. The error
// is set only when the agent could not be started.
func (r *runner) runAgent(ctx context.Context, job phaseJob, prompt string) (agentRun, error) {
	dir := r.phaseDir(job.phase.Name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return agentRun{}, fmt.Errorf("create phase directory: %w", err)
	}
	promptPath := filepath.Join(dir, "prompt.md")
	if err := os.WriteFile(promptPath, []byte(prompt), 0o644); err != nil {
		return agentRun{}, fmt.Errorf("write prompt: %w", err)
	}

	stdin, err := os.Open(promptPath)
	if err != nil {
		return agentRun{}, fmt.Errorf("open prompt: %w", err)
	}
	defer stdin.Close()
	outPath := filepath.Join(dir, "output.md")
	stdout, err := createFile(outPath)
	if err != nil {
		return agentRun{}, fmt.Errorf("create output: %w", err)
	}
	defer stdout.Close()
	stderr, err := createFile(filepath.Join(dir, "stderr.log"))
	if err != nil {
		return agentRun{}, fmt.Errorf("create stderr log: %w", err)
	}
	defer stderr.Close()

	proc := process{
		argv:    job.agent.Argv,
		dir:     r.p.dir,
		env:     r.env(job),
		stdin:   stdin,
		stdout:  stdout,
		stderr:  stderr,
		grace:   r.p.opts.Grace,
		onGroup: r.trackGroup(job.phase.Name),
	}
	res, err := proc.run(ctx)
	if err != nil {
		return agentRun{}, fmt.Errorf("agent %s: %w", job.agent.Name, err)
	}
	if res.GroupLeft {
		r.p.opts.Logger.Warn("process group still present after kill", "run_id", r.runID, "phase", job.phase.Name)
	}
	out, err := os.ReadFile(outPath)
	if err != nil {
		return agentRun{}, fmt.Errorf("read agent output: %w", err)
	}
	return agentRun{Output: string(out), Result: res}, nil
}

// agentFailure describes a command agent that exited with an error, with
// the last lines of its stderr.
func (r *runner) agentFailure(job phaseJob, res processResult) string {
	msg := fmt.Sprintf("agent %s exited with code %d", job.agent.Name, res.ExitCode)
	tail := strings.TrimSpace(tailFile(filepath.Join(r.phaseDir(job.phase.Name), "stderr.log"), 5))
	if tail != "" {
		msg += ": " + strings.ReplaceAll(tail, "\n", " | ")
	}
	return msg
}
