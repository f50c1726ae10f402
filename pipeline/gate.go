package pipeline

import (
	"context"
	"fmt"
	"strings"
)

// Gate verdicts.
const (
	VerdictPass     = "PASS"
	VerdictRoute    = "ROUTE"
	VerdictEscalate = "ESCALATE"
)

// maxFeedbackOutput bounds how much of a gate agent's output goes into the
// feedback of a re-run, keeping the end, where the conclusion is.
const maxFeedbackOutput = 16 << 10

// verdict is a gate's decision.
type verdict struct {
	Kind string // VerdictPass, VerdictRoute or VerdictEscalate
	// Target is the phase named by "ROUTE:<phase>"; empty means the gate's
	// route targets.
	Target string
	Reason string
}

// String returns the verdict as written by an agent, e.g. "ROUTE:build".
func (v verdict) String() string {
	if v.Target != "" {
		return v.Kind + ":" + v.Target
	}
	return v.Kind
}

// runGate runs the gate's commands, then decides: by the command results
// alone for an exec gate, else by the verdict line of its agent's output.
func (r *runner) runGate(ctx context.Context, job phaseJob) phaseResult {
	results, escalate := r.runCommands(ctx, job)
	if ctx.Err() != nil {
		return phaseResult{Status: StatusCancelled}
	}
	if escalate != nil {
		return phaseResult{Status: StatusEscalated, Reason: escalateReason(*escalate)}
	}

	report := formatResults(results)
	if job.agent.isExec() {
		v := execVerdict(results)
		output := fmt.Sprintf("VERDICT: %s\n\n%s\n\nCommand results:\n\n%s", v, v.Reason, report)
		return phaseResult{Status: PhaseDone, Verdict: &v, Output: output,
			Feedback: gateFeedback(v, report, "")}
	}

	text, err := r.buildPrompt(job, report)
	if err != nil {
		return phaseResult{Status: StatusFailed, Reason: err.Error()}
	}
	run, err := r.runAgent(ctx, job, text)
	switch {
	case err != nil:
		return phaseResult{Status: StatusFailed, Reason: err.Error()}
	case run.Result.Err != nil:
		return phaseResult{Status: StatusCancelled}
	case run.Result.ExitCode != 0:
		code := run.Result.ExitCode
		return phaseResult{Status: StatusFailed, Reason: r.agentFailure(job, run.Result), ExitCode: &code}
	}
	v := parseVerdict(run.Output)
	return phaseResult{Status: PhaseDone, Verdict: &v, Output: run.Output,
		Feedback: gateFeedback(v, report, run.Output)}
}

// execVerdict decides a gate without an agent: PASS when no command failed,
// else ROUTE. Skipped commands count as passed.
func execVerdict(results []commandResult) verdict {
	var failed []string
	for _, c := range results {
		if !c.Skipped && !c.passed() {
			failed = append(failed, fmt.Sprintf("%s %s", c.Name, c.describe()))
		}
	}
	if len(failed) == 0 {
		return verdict{Kind: VerdictPass, Reason: fmt.Sprintf("all %d commands passed", len(results))}
	}
	return verdict{Kind: VerdictRoute, Reason: fmt.Sprintf("%d of %d commands failed: %s",
		len(failed), len(results), strings.Join(failed, "; "))}
}

// parseVerdict reads the last "VERDICT: ..." line of a gate agent's
// output. No such line, or an unknown verdict, is ESCALATE with a reason.
// The reason of a valid verdict is the last non-empty line before it.
func parseVerdict(output string) verdict {
	lines := strings.Split(output, "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		line := strings.Trim(strings.TrimSpace(lines[i]), "*`_ ")
		value, ok := strings.CutPrefix(line, "VERDICT:")
		if !ok {
			continue
		}
		v, valid := verdictValue(strings.TrimSpace(value))
		if !valid {
			return verdict{Kind: VerdictEscalate, Reason: fmt.Sprintf(
				"gate agent gave the unknown verdict %q (expected PASS, ROUTE, ROUTE:<phase> or ESCALATE)",
				strings.TrimSpace(value))}
		}
		v.Reason = lastNonBlankLine(lines[:i])
		if v.Reason == "" {
			v.Reason = "verdict of the gate agent"
		}
		return v
	}
	return verdict{Kind: VerdictEscalate,
		Reason: "gate agent output has no line of the form VERDICT: PASS|ROUTE|ROUTE:<phase>|ESCALATE"}
}

// verdictValue parses the text after "VERDICT:".
func verdictValue(value string) (verdict, bool) {
	kind, target, hasTarget := strings.Cut(value, ":")
	kind = strings.ToUpper(strings.TrimSpace(kind))
	target = strings.TrimSpace(target)
	switch {
	case hasTarget && kind == VerdictRoute && target != "":
		return verdict{Kind: VerdictRoute, Target: target}, true
	case hasTarget:
		return verdict{}, false
	case kind == VerdictPass || kind == VerdictRoute || kind == VerdictEscalate:
		return verdict{Kind: kind}, true
	}
	return verdict{}, false
}

// lastNonBlankLine returns the last non-blank line of lines, cut to 300 bytes.
func lastNonBlankLine(lines []string) string {
	for i := len(lines) - 1; i >= 0; i-- {
		s := strings.TrimSpace(lines[i])
		if s == "" {
			continue
		}
		if len(s) > 300 {
			s = s[:300] + "..."
		}
		return s
	}
	return ""
}

// gateFeedback is the text that a ROUTE verdict sends to the re-run phases:
// the verdict and reason, the command results and the agent's output.
func gateFeedback(v verdict, report, agentOutput string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "The gate returned %s: %s\n\nCommand results:\n\n%s", v, v.Reason, report)
	out := strings.TrimSpace(agentOutput)
	if out != "" {
		if len(out) > maxFeedbackOutput {
			out = "..." + out[len(out)-maxFeedbackOutput:]
		}
		fmt.Fprintf(&b, "\nReview by the gate agent:\n\n%s\n", out)
	}
	return b.String()
}

// escalateReason explains an escalation caused by a command with
// escalate_on_fail.
func escalateReason(c commandResult) string {
	return fmt.Sprintf("command %q %s and has escalate_on_fail set", c.Name, c.describe())
}
