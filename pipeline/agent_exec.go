package pipeline

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// DefaultCommandTimeout bounds each command of an exec phase or a gate that
// sets no timeout.
const DefaultCommandTimeout = 2 * time.Minute

// outputTailLines is how many of a failed command's last output lines go
// into handoffs and gate feedback.
const outputTailLines = 40

// commandResult is the outcome of one command of a phase.
type commandResult struct {
	Name     string
	Run      string
	Skipped  bool // its if-condition failed
	ExitCode int
	TimedOut bool
	Timeout  time.Duration
	// Err is set when the command could not run at all.
	Err      string
	Duration time.Duration
	LogFile  string // relative to the project directory
	Tail     string // last lines of the output, for failed commands
}

// passed reports whether the command ran and succeeded.
func (c commandResult) passed() bool {
	return !c.Skipped && !c.TimedOut && c.Err == "" && c.ExitCode == 0
}

// describe returns a short outcome such as "passed" or "failed (exit 2)".
func (c commandResult) describe() string {
	switch {
	case c.Skipped:
		return "skipped (if-condition failed)"
	case c.Err != "":
		return "failed: " + c.Err
	case c.TimedOut:
		return fmt.Sprintf("timed out after %s", c.Timeout)
	case c.ExitCode != 0:
		return fmt.Sprintf("failed (exit %d)", c.ExitCode)
	}
	return "passed"
}

// runCommands runs the phase's commands one after another with sh -c in
// the project directory. It stops early when ctx is cancelled or a failed
// command has escalate_on_fail set; that command is returned as escalate.
func (r *runner) runCommands(ctx context.Context, job phaseJob) (results []commandResult, escalate *commandResult) {
	for i, c := range job.phase.Commands {
		if ctx.Err() != nil {
			return results, nil
		}
		res := r.runCommand(ctx, job, i, c)
		results = append(results, res)
		r.text.printf("%s: command %q %s in %s", job.phase.Name, res.Name, res.describe(),
			res.Duration.Round(time.Millisecond))
		if !res.passed() && !res.Skipped && c.EscalateOnFail && ctx.Err() == nil {
			return results, &results[len(results)-1]
		}
	}
	return results, nil
}

// runCommand runs one command, first its if-condition when it has one.
// Both write their output to the same log file.
func (r *runner) runCommand(ctx context.Context, job phaseJob, i int, c Command) commandResult {
	res := commandResult{Name: c.Name, Run: Substitute(c.Run, r.p.inputs), Timeout: DefaultCommandTimeout}
	if res.Name == "" {
		res.Name = fmt.Sprintf("command %d", i+1)
	}
	if c.Timeout != "" {
		d, err := time.ParseDuration(c.Timeout)
		if err != nil || d <= 0 {
			res.Err = fmt.Sprintf("invalid timeout %q (use a Go duration such as 30s or 5m)", c.Timeout)
			return res
		}
		res.Timeout = d
	}

	logPath := filepath.Join(r.phaseDir(job.phase.Name), "commands", fmt.Sprintf("%02d-%s.log", i+1, slug(res.Name)))
	res.LogFile, _ = filepath.Rel(r.p.dir, logPath)
	logFile, err := createFile(logPath)
	if err != nil {
		res.Err = err.Error()
		return res
	}
	defer logFile.Close()

	if c.If != "" {
		cond := Substitute(c.If, r.p.inputs)
		fmt.Fprintf(logFile, "$ if %s\n", cond)
		pr, err := r.shell(ctx, job, cond, res.Timeout, logFile).run(ctx)
		if err != nil {
			res.Err = err.Error()
			return res
		}
		if pr.Err != nil || pr.ExitCode != 0 {
			res.Skipped = pr.Err == nil
			res.Duration = pr.Duration
			return r.interrupted(res, pr)
		}
	}

	fmt.Fprintf(logFile, "$ %s\n", res.Run)
	pr, err := r.shell(ctx, job, res.Run, res.Timeout, logFile).run(ctx)
	if err != nil {
		res.Err = err.Error()
		return res
	}
	res.Duration = pr.Duration
	res.ExitCode = pr.ExitCode
	res = r.interrupted(res, pr)
	if !res.passed() {
		res.Tail = tailFile(logPath, outputTailLines)
	}
	return res
}

// interrupted records in res why a process was stopped: a timeout or the
// run's cancellation.
func (r *runner) interrupted(res commandResult, pr processResult) commandResult {
	switch {
	case errors.Is(pr.Err, ErrTimeout):
		res.TimedOut = true
	case pr.Err != nil:
		res.Err = "cancelled"
	}
	if pr.GroupLeft {
		r.p.opts.Logger.Warn("process group still present after kill", "run_id", r.runID, "command", res.Name)
	}
	return res
}

// shell returns the process that runs script with sh -c for job.
func (r *runner) shell(ctx context.Context, job phaseJob, script string, timeout time.Duration, log *os.File) process {
	return process{
		argv:    []string{"sh", "-c", script},
		dir:     r.p.dir,
		env:     r.env(job),
		stdout:  log,
		stderr:  log,
		timeout: timeout,
		grace:   r.p.opts.Grace,
		onGroup: r.trackGroup(job.phase.Name),
	}
}

// env returns the environment of a phase's processes: this process's
// environment plus the CLIQ_* variables that identify the run and phase.
func (r *runner) env(job phaseJob) []string {
	return append(os.Environ(),
		"CLIQ_PROJECT_DIR="+r.p.dir,
		"CLIQ_INSTANCE_ID="+r.p.instanceID,
		"CLIQ_RUN_ID="+r.runID,
		"CLIQ_PHASE="+job.phase.Name,
		fmt.Sprintf("CLIQ_ITERATION=%d", job.iteration),
	)
}

// formatResults renders command results as markdown: one line per command
// and, for each failed one, the tail of its output.
func formatResults(results []commandResult) string {
	if len(results) == 0 {
		return "No commands ran.\n"
	}
	var b strings.Builder
	for _, c := range results {
		fmt.Fprintf(&b, "- `%s`: %s", c.Name, c.describe())
		if c.LogFile != "" && !c.Skipped {
			fmt.Fprintf(&b, " (log: %s)", c.LogFile)
		}
		b.WriteString("\n")
	}
	for _, c := range results {
		if c.Tail == "" {
			continue
		}
		fmt.Fprintf(&b, "\nOutput of `%s` (last lines):\n\n```\n%s\n```\n", c.Name, strings.TrimRight(c.Tail, "\n"))
	}
	return b.String()
}

// countFailed returns how many commands ran and did not pass.
func countFailed(results []commandResult) int {
	n := 0
	for _, c := range results {
		if !c.Skipped && !c.passed() {
			n++
		}
	}
	return n
}

// allSkipped reports whether there were commands and every one was skipped.
func allSkipped(results []commandResult) bool {
	for _, c := range results {
		if !c.Skipped {
			return false
		}
	}
	return len(results) > 0
}

var slugUnsafe = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// slug turns a command name into a file name part.
func slug(name string) string {
	s := strings.Trim(slugUnsafe.ReplaceAllString(name, "-"), "-.")
	if len(s) > 40 {
		s = s[:40]
	}
	if s == "" {
		s = "command"
	}
	return s
}

// createFile creates (or truncates) path, creating its directory.
func createFile(path string) (*os.File, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("create directory: %w", err)
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("create file: %w", err)
	}
	return f, nil
}

// tailFile returns the last n lines of the file at path, at most 8 KiB.
func tailFile(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	const maxBytes = 8 << 10
	if len(data) > maxBytes {
		data = data[len(data)-maxBytes:]
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
