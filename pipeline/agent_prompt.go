package pipeline

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// handoffFile is the name of the note a phase leaves in each of its
// outgoing channels.
const handoffFile = "handoff.md"

// handoff is the text one upstream phase left for the phase being prompted.
type handoff struct {
	From string
	Text string
}

// feedback is the text a gate sends back with a ROUTE verdict.
type feedback struct {
	Gate      string
	Iteration int
	Text      string
}

// prompt holds the parts of a command agent's prompt.
type prompt struct {
	Phase       string
	Role        string
	Requirement string
	Handoffs    []handoff
	Feedback    []feedback
	// Commands is the markdown of a gate's command results; empty for
	// standard phases.
	Commands string
	Task     string
}

// String renders the prompt as markdown, leaving out empty sections.
func (p prompt) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "You are the %s agent.\n", p.Phase)
	section(&b, "## Role", p.Role)
	section(&b, "## Requirements", p.Requirement)
	if len(p.Handoffs) > 0 {
		b.WriteString("\n## Context from Prior Phases\n")
		for _, h := range p.Handoffs {
			section(&b, "### From "+h.From, h.Text)
		}
	}
	for _, f := range p.Feedback {
		section(&b, fmt.Sprintf("## Feedback from gate %s (iteration %d)", f.Gate, f.Iteration), f.Text)
	}
	section(&b, "## Command Results", p.Commands)
	section(&b, "## Your Task", p.Task)
	return b.String()
}

// section writes a heading and its text, or nothing when text is blank.
func section(b *strings.Builder, heading, text string) {
	text = strings.TrimSpace(text)
	if text == "" {
		return
	}
	fmt.Fprintf(b, "\n%s\n\n%s\n", heading, text)
}

// Task texts of the two kinds of phase that run a command agent.
const (
	standardTask = "Do the work that your role describes for the requirements above, " +
		"in the current directory. Finish with a short summary of what you did and what the " +
		"next phases need to know: your output is handed to them."
	gateTaskFormat = "Review the work of the prior phases against the requirements and the " +
		"command results above. Explain your decision, then end your output with exactly one " +
		"line that is one of:\n\n" +
		"VERDICT: PASS\nVERDICT: ROUTE\nVERDICT: ROUTE:<phase>\nVERDICT: ESCALATE\n\n" +
		"PASS accepts the work. ROUTE sends it back for fixes to %s, or to the phase you name " +
		"(one of: %s). ESCALATE stops the run for a human."
)

// buildPrompt assembles the prompt of job's phase. commands is the gate's
// command results and empty for standard phases.
func (r *runner) buildPrompt(job phaseJob, commands string) (string, error) {
	role, err := r.readRole(job.phase)
	if err != nil {
		return "", err
	}
	handoffs, err := readHandoffs(r.p.cliqDir, job.phase)
	if err != nil {
		return "", err
	}
	p := prompt{
		Phase:       job.phase.Name,
		Role:        role,
		Requirement: r.p.requirement,
		Handoffs:    handoffs,
		Feedback:    job.feedback,
		Commands:    commands,
		Task:        standardTask,
	}
	if job.phase.Type == TypeGate {
		targets := r.p.team.RouteTargets(job.phase.Name)
		p.Task = fmt.Sprintf(gateTaskFormat, strings.Join(targets, ", "),
			strings.Join(r.ancestors(job.phase.Name), ", "))
	}
	return p.String(), nil
}

// readRole reads the phase's role file with $(inputs.x) substituted. The
// role defaults to the phase name.
func (r *runner) readRole(ph *Phase) (string, error) {
	role := ph.Role
	if role == "" {
		role = ph.Name
	}
	path := filepath.Join(r.p.team.Dir, "roles", role+".md")
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read role of phase %q: %w", ph.Name, err)
	}
	return Substitute(string(data), r.p.inputs), nil
}

// readHandoffs returns the notes in every channel that leads to ph: first
// those of its depends_on phases in their order, then any other channel
// named "<from>--<phase>", sorted by name.
func readHandoffs(cliqDir string, ph *Phase) ([]handoff, error) {
	dirs, err := filepath.Glob(filepath.Join(cliqDir, "channels", "*--"+ph.Name))
	if err != nil {
		return nil, fmt.Errorf("list channels of phase %q: %w", ph.Name, err)
	}
	rank := make(map[string]int, len(ph.DependsOn))
	for i, dep := range ph.DependsOn {
		rank[dep] = i
	}
	froms := make([]string, 0, len(dirs))
	for _, d := range dirs {
		froms = append(froms, strings.TrimSuffix(filepath.Base(d), "--"+ph.Name))
	}
	sort.SliceStable(froms, func(i, j int) bool {
		ri, iDep := rank[froms[i]]
		rj, jDep := rank[froms[j]]
		if iDep != jDep {
			return iDep
		}
		if iDep {
			return ri < rj
		}
		return froms[i] < froms[j]
	})

	var out []handoff
	for _, from := range froms {
		text, err := readChannel(filepath.Join(cliqDir, "channels", from+"--"+ph.Name))
		if err != nil {
			return nil, err
		}
		if strings.TrimSpace(text) != "" {
			out = append(out, handoff{From: from, Text: text})
		}
	}
	return out, nil
}

// readChannel concatenates the markdown and text files of a channel
// directory in name order.
func readChannel(dir string) (string, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read channel: %w", err)
	}
	var parts []string
	for _, e := range entries {
		ext := filepath.Ext(e.Name())
		if e.IsDir() || (ext != ".md" && ext != ".txt") {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return "", fmt.Errorf("read channel: %w", err)
		}
		parts = append(parts, strings.TrimSpace(string(data)))
	}
	return strings.Join(parts, "\n\n"), nil
}
